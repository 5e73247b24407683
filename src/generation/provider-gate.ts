import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';

/**
 * What one provider allows the whole deployment, kept where every replica sees it (the
 * database: src/db/provider-limits.ts). Durations in ms.
 */
export interface SharedLimits {
  /** How long the provider is still paused for (a 429 any replica was given). */
  pauseLeft(): Promise<number>;
  pause(ms: number): Promise<void>;
  /** Reserves this call's moment under the provider's rate limit: how long to wait. Absent: no rate limit. */
  reserve?: (() => Promise<number>) | undefined;
  /**
   * Takes one of the provider's deployment-wide call slots: a release function, or null when
   * all are taken (the gate waits and asks again). Absent: the concurrency limit is per process.
   */
  acquire?: (() => Promise<(() => Promise<void>) | null>) | undefined;
  /** A shared read or write failed: the gate goes on with what it knows locally. */
  onError(err: unknown): void;
}

/**
 * What one provider may do: at most `concurrency` calls at once in this process (its own
 * limit, on top of GENERATION_CONCURRENCY), none while it is paused, and, with shared limits,
 * none while any replica's 429 pauses it and no faster than its deployment-wide rate. A 429
 * pauses the provider for every slot of every replica, not only the one told to slow down.
 * Waiting here is not an attempt: a slot that waits for the limit never burns a retry.
 */
export interface ProviderGate {
  run<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T>;
  /** Nobody calls this provider for `ms` from now (longer pauses win). */
  pause(ms: number): void;
  pausedUntil(): number;
}

export interface ProviderGateOptions {
  shared?: SharedLimits | undefined;
  /** The shared pause is read at most this often, default 100 ms (a 429 reaches the other replicas within it). */
  sharedReadEveryMs?: number | undefined;
  now?: () => number;
}

export function createProviderGate(concurrency: number | undefined, o: ProviderGateOptions = {}): ProviderGate {
  const now = o.now ?? Date.now;
  const limit = concurrency ? pLimit(concurrency) : undefined;
  const readEvery = o.sharedReadEveryMs ?? 100;
  let until = 0;
  let readAt = -Infinity;
  let reading: Promise<void> | undefined;

  /** The deployment-wide pause, folded into `until`; one read in flight at a time, at most every readEvery. */
  async function readShared(): Promise<void> {
    const shared = o.shared;
    if (!shared || now() - readAt < readEvery) return;
    reading ??= shared
      .pauseLeft()
      .then((left) => {
        readAt = now();
        until = Math.max(until, now() + left);
      }, shared.onError)
      .finally(() => (reading = undefined));
    await reading;
  }

  async function waitWhilePaused(signal: AbortSignal) {
    await readShared();
    for (let wait = until - now(); wait > 0; wait = until - now()) {
      await sleep(wait, undefined, { signal });
      await readShared();
    }
  }

  async function waitForTurn(signal: AbortSignal) {
    await waitWhilePaused(signal);
    const reserve = o.shared?.reserve;
    if (!reserve) return;
    const wait = await reserve().catch((err: unknown) => (o.shared!.onError(err), 0));
    if (wait > 0) {
      await sleep(wait, undefined, { signal });
      // A 429 may have paused the provider meanwhile: the reserved moment is then given up.
      await waitWhilePaused(signal);
    }
  }

  /** A deployment-wide call slot (shared.acquire), waited for with a growing pause; none when the database fails. */
  async function takeSlot(signal: AbortSignal): Promise<(() => Promise<void>) | undefined> {
    const acquire = o.shared?.acquire;
    if (!acquire) return undefined;
    for (let wait = 20; ; wait = Math.min(wait * 2, 250)) {
      let release: (() => Promise<void>) | null;
      try {
        release = await acquire();
      } catch (err) {
        o.shared!.onError(err);
        return undefined;
      }
      if (release) return release;
      await sleep(wait, undefined, { signal });
    }
  }

  async function callWithSlot<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T> {
    await waitForTurn(signal);
    const release = await takeSlot(signal);
    try {
      return await call();
    } finally {
      await release?.().catch(o.shared!.onError);
    }
  }

  return {
    async run(call, signal) {
      if (!limit) return callWithSlot(call, signal);
      await waitWhilePaused(signal);
      // A pause may have begun while we queued for a turn: callWithSlot looks again.
      return limit(() => callWithSlot(call, signal));
    },
    pause(ms) {
      until = Math.max(until, now() + ms);
      o.shared?.pause(ms).catch(o.shared.onError);
    },
    pausedUntil: () => until,
  };
}
