/**
 * `body` as a stream whose every read must be answered within `timeoutMs`: a source that hangs
 * part way fails the read instead of stalling it for ever. Only time spent waiting on the source
 * counts: nothing is read ahead (highWaterMark 0), so a consumer that reads slowly (backpressure
 * from a slow client) is never taken for a hung source. On a timeout `onTimeout` is called (to
 * abort the request that produced the body) and the stream errors; every error of the source
 * goes through `mapError` first. Cancelling the stream cancels the source.
 */
export function withReadTimeout(
  body: ReadableStream<Uint8Array>,
  options: { timeoutMs: number; onTimeout: (reason: Error) => void; mapError: (err: unknown) => unknown },
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const reason = new DOMException(`no data for ${options.timeoutMs} ms`, 'TimeoutError');
            options.onTimeout(reason);
            reject(reason);
          }, options.timeoutMs);
        });
        try {
          const { done, value } = await Promise.race([reader.read(), timedOut]);
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          controller.error(options.mapError(err));
          reader.cancel(err).catch(() => {});
        } finally {
          clearTimeout(timer);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}
