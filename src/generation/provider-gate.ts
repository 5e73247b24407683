import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';

/**
 * What one provider may do in this process: at most `concurrency` calls at once (its own
 * limit, on top of GENERATION_CONCURRENCY), and none while it is paused. A 429 pauses the
 * provider for every slot of this process, not only the one that was told to slow down.
 */
export interface ProviderGate {
  run<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T>;
  /** Nobody calls this provider for `ms` from now (longer pauses win). */
  pause(ms: number): void;
  pausedUntil(): number;
}

export function createProviderGate(concurrency: number | undefined, now: () => number = Date.now): ProviderGate {
  const limit = concurrency ? pLimit(concurrency) : undefined;
  let until = 0;

  async function waitWhilePaused(signal: AbortSignal) {
    for (let wait = until - now(); wait > 0; wait = until - now()) await sleep(wait, undefined, { signal });
  }

  return {
    async run(call, signal) {
      await waitWhilePaused(signal);
      if (!limit) return call();
      return limit(async () => {
        // A pause may have begun while we queued for a turn.
        await waitWhilePaused(signal);
        return call();
      });
    },
    pause(ms) {
      until = Math.max(until, now() + ms);
    },
    pausedUntil: () => until,
  };
}
