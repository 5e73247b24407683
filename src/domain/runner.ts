import { createHash, randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import pLimit from 'p-limit';
import type { Pool, Sql } from '../db/database.ts';
import { QUEUE_CHANNEL } from '../db/images.ts';
import {
  claimQueuedSlots,
  extendLeases,
  markImageFailed,
  markImageSucceeded,
  recoverExpiredLeases,
  releaseLeases,
  type ClaimedSlot,
} from '../db/queue.ts';
import type { Logger } from '../log.ts';
import type { ImageProvider } from '../providers/provider.ts';
import type { ObjectStore } from '../storage/store.ts';
import { ASPECT_RATIOS, IMAGE_SIZES, type AspectRatio } from './aspect-ratio.ts';
import { fullPromptOf } from './prompt.ts';
import { imageKey } from './storage-key.ts';

export interface RunnerOptions {
  sql: Pool;
  providers: ReadonlyMap<string, ImageProvider>;
  defaultProvider: string;
  store: ObjectStore;
  log: Logger;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  maxAttempts: number;
  workerId?: string;
}

export interface Runner {
  readonly workerId: string;
  start(): void;
  /** Something was queued: look for work now instead of at the next poll. */
  wake(): void;
  /**
   * Stops claiming, lets in-flight slots finish for up to `graceMs`, then gives the rest
   * back to the queue so another worker takes them at once.
   */
  stop(graceMs: number): Promise<void>;
  /** Slots currently held by this runner. */
  inFlight(): number;
}

/**
 * The queue is the generated_images table. The runner claims queued slots in batches
 * (never more than it has free capacity for, so it never sits on leases it cannot work
 * on), runs them under p-limit, and writes every outcome to the slot's row. It never holds
 * a transaction or a pooled connection across a provider call.
 */
export function createRunner(o: RunnerOptions): Runner {
  const workerId = o.workerId ?? `${hostname()}:${process.pid}:${randomInt(1e9).toString(36)}`;
  const limit = pLimit(o.concurrency);
  const held = new Map<string, AbortController>();
  const tasks = new Set<Promise<void>>();
  let running = false;
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let heartbeat: NodeJS.Timeout | undefined;
  let lastRecovery = 0;
  let unlisten: (() => Promise<void>) | undefined;

  function wake() {
    woken = true;
    wakeUp?.();
  }

  function idle(ms: number): Promise<void> {
    if (woken) {
      woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = done;
    });
  }

  async function run() {
    let failures = 0;
    while (running) {
      try {
        if (Date.now() - lastRecovery >= o.pollIntervalMs) {
          lastRecovery = Date.now();
          const recovered = await recoverExpiredLeases(o.sql, o.maxAttempts);
          if (recovered.requeued + recovered.failed > 0) o.log.warn(recovered, 'recovered slots whose lease expired');
        }
        const free = o.concurrency - limit.activeCount - limit.pendingCount;
        if (free > 0) {
          const slots = await claimQueuedSlots(o.sql, workerId, free, o.leaseMs);
          failures = 0;
          for (const slot of slots) {
            const controller = new AbortController();
            held.set(slot.id, controller);
            const task = limit(() => runSlot(slot, controller.signal)).finally(() => {
              held.delete(slot.id);
              tasks.delete(task);
              wake();
            });
            tasks.add(task);
          }
          if (slots.length === free) continue; // there may be more: claim again as capacity frees
        }
        await idle(o.pollIntervalMs);
      } catch (err) {
        // The database is unreachable or failing: back off and try again; nothing is lost,
        // since unclaimed slots stay queued and claimed ones come back when their lease expires.
        failures += 1;
        const backoff = Math.min(o.pollIntervalMs * 2 ** Math.min(failures, 6), 30_000);
        o.log.error({ err, backoffMs: backoff }, 'runner could not reach the queue');
        await idle(backoff);
      }
    }
  }

  async function runSlot(slot: ClaimedSlot, signal: AbortSignal): Promise<void> {
    const fence = { id: slot.id, workerId, generation: slot.generation, attempts: slot.attempts };
    const settings = slot.settings ?? {};
    const providerName = typeof settings.provider === 'string' ? settings.provider : o.defaultProvider;
    const style = typeof settings.style === 'string' ? settings.style : null;
    const model = typeof settings.model === 'string' ? settings.model : null;
    const aspectRatio: AspectRatio = ASPECT_RATIOS.includes(slot.aspectRatio as AspectRatio) ? (slot.aspectRatio as AspectRatio) : '16:9';
    const prompt = slot.prompt ?? '';
    const fullPrompt = fullPromptOf(prompt, style);
    const log = o.log.child({ slot: slot.id, projectId: slot.projectId, scene: slot.sceneIndex, image: slot.imageIndex });
    let storedKey: string | undefined;
    try {
      const provider = o.providers.get(providerName);
      if (!provider) throw new Error(`provider "${providerName}" is not configured on this server`);
      const { width, height } = IMAGE_SIZES[aspectRatio];
      const image = await provider.generate({ prompt, fullPrompt, aspectRatio, width, height, seed: randomInt(2 ** 31 - 1), model, signal });
      const key = imageKey({ ...slot, attempt: slot.attempts, mimeType: image.mimeType });
      const { url } = await o.store.put(key, image.bytes, image.mimeType);
      storedKey = key;
      const result = await markImageSucceeded(o.sql, fence, {
        url,
        storageKey: key,
        fullPrompt,
        provider: provider.name,
        model: image.model ?? model,
        seed: image.seed,
        width: image.width,
        height: image.height,
        mimeType: image.mimeType,
        bytes: image.bytes.byteLength,
        sha256: createHash('sha256').update(image.bytes).digest('hex'),
      });
      if (!result.committed) {
        // Our claim was superseded (regenerated, or our lease expired and someone else has
        // the slot): the object we uploaded must never be referenced.
        log.warn('claim superseded before commit; discarding our image');
        await o.store.remove([key]);
        return;
      }
      log.debug({ url }, 'image succeeded');
      if (result.previousKey && result.previousKey !== key) await removeQuietly(result.previousKey, log);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.warn({ err }, 'image failed');
      try {
        const recorded = await markImageFailed(o.sql, fence, { error: message, provider: providerName, fullPrompt });
        if (!recorded) log.warn('claim superseded before the failure could be recorded');
      } catch (dbErr) {
        // The failure could not be written: the lease will expire and the slot is retried.
        log.error({ err: dbErr }, 'could not record the failure; the slot will be retried when its lease expires');
      }
      if (storedKey) await removeQuietly(storedKey, log);
    }
  }

  async function removeQuietly(key: string, log: Logger) {
    try {
      await o.store.remove([key]);
    } catch (err) {
      log.warn({ err, key }, 'could not remove an unreferenced object');
    }
  }

  return {
    workerId,
    start() {
      if (running) return;
      running = true;
      heartbeat = setInterval(() => {
        extendLeases(o.sql, workerId, [...held.keys()], o.leaseMs).catch((err) => o.log.warn({ err }, 'could not extend leases'));
      }, Math.max(250, Math.floor(o.leaseMs / 3)));
      heartbeat.unref();
      // Slots queued by any process (another replica too) wake us at once; the poll is the fallback.
      o.sql
        .listen(QUEUE_CHANNEL, () => wake())
        .then((sub) => {
          if (running) unlisten = sub.unlisten;
          else void sub.unlisten();
        })
        .catch((err) => o.log.warn({ err }, 'could not LISTEN for queued slots; polling only'));
      loop = run();
    },
    wake,
    inFlight: () => held.size,
    async stop(graceMs) {
      if (!running) return;
      running = false;
      wake();
      await unlisten?.().catch(() => {});
      await loop;
      const drained = Promise.allSettled([...tasks]);
      const timedOut = await Promise.race([drained.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
      if (timedOut) {
        const ids = [...held.keys()];
        limit.clearQueue();
        // Give the leases back BEFORE aborting: once released, the fence (locked_by) makes
        // every late write of ours a no-op, so an aborted call cannot mark its slot failed
        // and a late success cannot win over the next worker.
        const released = await releaseLeases(o.sql, workerId, ids).catch((err) => {
          o.log.error({ err }, 'could not release leases; they will expire');
          return 0;
        });
        for (const controller of held.values()) controller.abort(new Error('shutting down'));
        o.log.info({ released }, 'released unfinished slots back to the queue');
      }
      clearInterval(heartbeat);
    },
  };
}
