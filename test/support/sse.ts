/** Server-sent events, read the way a client does. */

type Block = { event: string; data: any } | { comment: string };

/** Reads a text/event-stream body block by block; `undefined` once the server closed it. */
export function sseReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  async function block(): Promise<Block | undefined> {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const lines = buffer.slice(0, end).split('\n');
        buffer = buffer.slice(end + 2);
        if (lines.every((l) => l.startsWith(':'))) return { comment: lines.join('\n') };
        const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
        return { event, data: JSON.parse(lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')) };
      }
      const { done, value } = await reader.read();
      if (done) return undefined;
      buffer += decoder.decode(value, { stream: true });
    }
  }
  /** The next event, skipping comments. */
  async function next() {
    for (;;) {
      const b = await block();
      if (b === undefined || !('comment' in b)) return b;
    }
  }
  return {
    block,
    next,
    /** Every event until the server closes the stream. */
    async rest() {
      const events: { event: string; data: any }[] = [];
      for (let e = await next(); e; e = await next()) events.push(e);
      return events;
    },
    cancel: () => reader.cancel(),
  };
}
