import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * V8 frees the memory behind dead ArrayBuffers (every chunk a stream has passed on) only when it
 * collects garbage, and it starts a collection for them only after about 64 MB of such memory
 * was allocated since the last one. A stream moving a gigabyte in small chunks therefore holds
 * up to ~64 MB of chunks it has already passed on, plus what the allocator keeps of them.
 *
 * Measured with `npm run bench -- --only archive` (1,000 images of 1 MiB, the service in its own
 * process, 2 cores): RSS over idle 78–100 MB with nothing done; a young-generation collection
 * every 4 MiB does not help there (chunks held while the socket drains outlive two scavenges
 * and are promoted); a full collection every 8 MiB, run concurrently (`execution: 'async'`),
 * keeps it at 33–38 MB, for 50–55 MB/s instead of 75–119 MB/s of archive throughput. Memory that
 * stays flat is the promise (issue 11: within 50 MB of idle); the speed is still ~20 s for a
 * gigabyte, faster than most clients download it.
 *
 * Streams that move much data count their bytes here. The collector is reached the way a
 * running process can (v8.setFlagsFromString, then a new context's `gc`), leaving the main
 * context's globals as they are; where that is refused, counting is a no-op.
 */
const EVERY_BYTES = 8 * 1024 * 1024;

type Collect = (options: { type: 'major'; execution: 'async' }) => unknown;

let collect: Collect | null | undefined;
let since = 0;

function collector(): Collect | null {
  if (collect !== undefined) return collect;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    collect = typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    collect = null;
  }
  return collect;
}

/** Counts bytes a stream passed on; every EVERY_BYTES, frees those no longer referenced. */
export function passedOn(bytes: number): void {
  since += bytes;
  if (since < EVERY_BYTES) return;
  since = 0;
  const running = collector()?.({ type: 'major', execution: 'async' });
  // The async form answers a promise; nothing waits for it.
  if (running instanceof Promise) running.catch(() => {});
}
