/**
 * Group commit: items added while a flush is running are flushed together by the next one,
 * so under load N items cost about N / batch statements, and an idle system adds no delay
 * (the first item is flushed on the next turn of the event loop).
 */
export function createBatcher<I, O>(flush: (items: I[]) => Promise<O[]>, maxBatch: number): (item: I) => Promise<O> {
  type Entry = { item: I; resolve: (o: O) => void; reject: (e: unknown) => void };
  const queue: Entry[] = [];
  let draining = false;

  async function drain() {
    while (queue.length > 0) {
      const batch = queue.splice(0, maxBatch);
      try {
        const results = await flush(batch.map((e) => e.item));
        batch.forEach((e, i) => e.resolve(results[i]!));
      } catch (err) {
        for (const e of batch) e.reject(err);
      }
    }
    draining = false;
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (!draining) {
        draining = true;
        setImmediate(() => void drain());
      }
    });
}
