import { createHash, randomUUID, randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import pRetry from 'p-retry';
import type { Pool } from '../db/database.ts';
import { purgeExpiredIdempotencyKeys } from '../db/idempotency.ts';
import { QUEUE_CHANNEL } from '../db/images.ts';
import { foldSlotChanges } from '../db/projects.ts';
import { purgeIdleRateLimits } from '../db/rate-limits.ts';
import {
  claimQueuedSlots,
  extendLeases,
  markImageFailed,
  markImagesSucceeded,
  pruneVersions,
  recoverExpiredLeases,
  releaseLeases,
  vacuumQueue,
  type ClaimedSlot,
  type CommitResult,
  type SlotFence,
  type SucceededImage,
  type SucceededSlot,
} from '../db/queue.ts';
import type { Logger } from '../log.ts';
import { ProviderError, type GeneratedImage, type GenerateRequest, type ImageProvider } from '../providers/provider.ts';
import { StoreError, type ObjectStore } from '../storage/store.ts';
import { ASPECT_RATIOS, IMAGE_SIZES, type AspectRatio } from './aspect-ratio.ts';
import { createBatcher } from './batcher.ts';
import { fullPromptOf } from './prompt.ts';
import { createAlarm } from './alarm.ts';
import { acquireProviderSlot, ensureProviderSlots, pauseProvider, providerPauseLeft, releaseProviderSlot, reserveProviderCall } from '../db/provider-limits.ts';
import type { Metrics } from '../metrics.ts';
import type { PriceOf } from './prices.ts';
import { createCircuits } from './circuits.ts';
import { createProviderCaller, type ProviderCall } from './provider-call.ts';
import { attemptKeys, imageKey } from './storage-key.ts';

export interface RunnerOptions {
  sql: Pool;
  providers: ReadonlyMap<string, ImageProvider>;
  defaultProvider: string;
  store: ObjectStore;
  log: Logger;
  /** Provider calls in flight at once. */
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  /** Provider calls per claim of a slot (transient failures are retried), and claims per slot. */
  maxAttempts: number;
  /** First retry delay; it doubles each retry, with jitter, and a Retry-After wins when longer. */
  retryBaseMs: number;
  /** Each provider call is aborted after this long and counts as a transient failure. */
  providerTimeoutMs: number;
  /** IMAGE_VERSIONS_KEPT: images a regenerate replaced, kept per slot (0: removed at once). */
  versionsKept: number;
  /** Counted: finished slots, provider calls, recovered leases, claim sizes (GET /metrics). */
  metrics?: Metrics | undefined;
  /**
   * Calls per provider per `rpmWindowMs`, deployment-wide (<PROVIDER>_RPM); a provider not in
   * the map has no rate limit. Its 429 pauses are deployment-wide in any case.
   */
  providerRpm?: ReadonlyMap<string, number> | undefined;
  rpmWindowMs?: number | undefined;
  /**
   * <PROVIDER>_CONCURRENCY for all replicas together (PROVIDER_CONCURRENCY_SCOPE=cluster):
   * call slots in PostgreSQL, leased for the call's timeout and then some.
   */
  clusterConcurrency?: boolean | undefined;
  /** A provider's circuit opens after this many transient failures in a row (default 5), for circuitOpenMs (default 30 s). */
  circuitFailures?: number | undefined;
  circuitOpenMs?: number | undefined;
  /** The price of an image (generation/prices.ts); absent: every cost is unknown. */
  priceOf?: PriceOf | undefined;
  /** How often slot_queue is vacuumed (vacuumQueue); default 5 s. */
  queueVacuumMs?: number | undefined;
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

/** Commits that fail on a database error are retried this many times before the lease is left to expire. */
const COMMIT_TRIES = 6;
const COMMIT_BATCH = 100;
const PURGE_EVERY_MS = 10 * 60_000;
/** How often the runner adds the slot changes its commits appended to their project rows (foldSlotChanges). */
const FOLD_EVERY_MS = 500;
/** How often the runner vacuums slot_queue by default (vacuumQueue): a table of the pending slots only, so milliseconds each time. */
const VACUUM_QUEUE_EVERY_MS = 5_000;
const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60_000;

/**
 * The queue is the generated_images table. The runner claims queued slots in batches and
 * holds at most two waves of them (`concurrency` at the provider, up to `concurrency` more
 * claimed ahead or being stored and committed), so the provider never waits on our own
 * bookkeeping. Provider calls run under p-limit(concurrency). Successes are committed in
 * set-based batches; every outcome is written to the slot's row. No transaction or pooled
 * connection is ever held across a provider call.
 */
export function createRunner(o: RunnerOptions): Runner {
  const workerId = o.workerId ?? `${hostname()}:${process.pid}:${randomInt(1e9).toString(36)}`;
  const providerLimit = pLimit(o.concurrency);
  const maxHeld = o.concurrency * 2;
  /**
   * Claims this runner holds, by claim (row id, generation, attempt): after a regenerate the
   * same row can be held twice at once, the old claim finishing while the new one runs.
   */
  const held = new Map<string, { fence: SlotFence; controller: AbortController }>();
  /** Claims queued behind p-limit, whose provider call has not started. */
  const waiting = new Set<string>();
  const claimKey = (f: SlotFence) => `${f.id}:${f.generation}:${f.attempts}`;
  const tasks = new Set<Promise<void>>();
  /** A provider's deployment-wide call slots, when it has a concurrency limit and the scope is the cluster. */
  function clusterConcurrency(name: string) {
    const limit = o.providers.get(name)?.concurrency;
    if (!o.clusterConcurrency || !limit) return undefined;
    let ready: Promise<void> | undefined;
    const leaseMs = o.providerTimeoutMs + 10_000;
    return async () => {
      await (ready ??= ensureProviderSlots(o.sql, name, limit).catch((err: unknown) => {
        ready = undefined;
        throw err;
      }));
      const holder = `${workerId}:${randomUUID()}`;
      const slot = await acquireProviderSlot(o.sql, name, limit, holder, leaseMs);
      return slot === null ? null : () => releaseProviderSlot(o.sql, name, slot, holder);
    };
  }

  const circuits = createCircuits({ failures: o.circuitFailures ?? 5, openMs: o.circuitOpenMs ?? 30_000 });
  const callProvider = createProviderCaller({
    providers: o.providers,
    limit: providerLimit,
    waiting,
    timeoutMs: o.providerTimeoutMs,
    maxAttempts: o.maxAttempts,
    retryBaseMs: o.retryBaseMs,
    metrics: o.metrics,
    circuits,
    sharedLimits: (provider) => {
      const rpm = o.providerRpm?.get(provider);
      const log = o.log.child({ provider });
      return {
        pauseLeft: () => providerPauseLeft(o.sql, provider),
        pause: (ms) => pauseProvider(o.sql, provider, ms),
        reserve: rpm ? () => reserveProviderCall(o.sql, provider, rpm, o.rpmWindowMs ?? 60_000) : undefined,
        acquire: clusterConcurrency(provider),
        onError: (err) => log.warn({ err }, 'provider limits could not be read or written: going on with this process’s own'),
      };
    },
  });
  const commit = createBatcher<SucceededSlot, CommitResult>(async (items) => {
    const results = await markImagesSucceeded(o.sql, workerId, items, o.versionsKept);
    if (o.versionsKept > 0) {
      // Committed already: pruning is housekeeping, and a failure here is retried by the slot's next commit.
      const slots = items.filter((_, i) => results[i]!.committed).map((item) => item.slot.id);
      const pruned = await pruneVersions(o.sql, slots, o.versionsKept).catch((err: unknown) => {
        o.log.warn({ err }, 'could not prune old image versions');
        return [];
      });
      if (pruned.length > 0) void o.store.remove(pruned).catch((err: unknown) => o.log.warn({ err, keys: pruned }, 'could not remove pruned versions'));
    }
    return results;
  }, COMMIT_BATCH);
  let running = false;
  let loop: Promise<void> | undefined;
  const { wake, idle } = createAlarm();
  let heartbeat: NodeJS.Timeout | undefined;
  let lastRecovery = 0;
  let lastPurge = 0;
  let lastFold = 0;
  let lastQueueVacuum = Date.now();
  let unlisten: (() => Promise<void>) | undefined;

  async function run() {
    let failures = 0;
    while (running) {
      try {
        if (Date.now() - lastRecovery >= o.pollIntervalMs) {
          lastRecovery = Date.now();
          const abandoned = await recoverExpiredLeases(o.sql, o.maxAttempts);
          if (abandoned.length > 0) {
            for (const a of abandoned) o.metrics?.leasesExpired.inc({ outcome: a.status === 'queued' ? 'requeued' : 'failed' });
            o.log.warn({ requeued: abandoned.filter((a) => a.status === 'queued').length, failed: abandoned.filter((a) => a.status === 'failed').length }, 'recovered slots whose lease expired');
            // A worker that died after uploading left an object no row will ever reference.
            const orphans = abandoned.flatMap((a) => attemptKeys({ ...a, attempt: a.attempts }));
            await o.store.remove(orphans).catch((err) => o.log.warn({ err }, 'could not remove objects of abandoned attempts'));
          }
        }
        if (Date.now() - lastFold >= FOLD_EVERY_MS) {
          lastFold = Date.now();
          // The project rows' counts and status (listings fold for themselves before they read).
          await foldSlotChanges(o.sql, { onlyIfPending: true });
        }
        if (Date.now() - lastQueueVacuum >= (o.queueVacuumMs ?? VACUUM_QUEUE_EVERY_MS)) {
          lastQueueVacuum = Date.now();
          // Housekeeping: a failure (no privilege, say) leaves it to autovacuum, and the queue works.
          await vacuumQueue(o.sql).catch((err: unknown) => o.log.warn({ err }, 'could not vacuum slot_queue'));
        }
        if (Date.now() - lastPurge >= PURGE_EVERY_MS) {
          lastPurge = Date.now();
          // Housekeeping: expired keys and idle rate-limit state are harmless (their next use
          // replaces them, an idle limiter row means the same as none) but take room.
          await purgeExpiredIdempotencyKeys(o.sql, IDEMPOTENCY_WINDOW_MS);
          await purgeIdleRateLimits(o.sql, 60 * 60_000);
        }
        const free = maxHeld - held.size;
        if (free > 0) {
          const slots = await claimQueuedSlots(o.sql, workerId, free, o.leaseMs);
          if (slots.length > 0) o.metrics?.claimBatchSize.observe(slots.length);
          failures = 0;
          for (const slot of slots) start(slot);
          if (slots.length === free) continue; // there may be more: claim again as capacity frees
        }
        await idle(o.pollIntervalMs);
      } catch (err) {
        // The database is unreachable or failing: back off and try again. Nothing is lost:
        // unclaimed slots stay queued, claimed ones come back when their lease expires.
        failures += 1;
        const backoff = Math.min(o.pollIntervalMs * 2 ** Math.min(failures, 6), 30_000);
        o.log.error({ err, backoffMs: backoff }, 'runner could not reach the queue');
        await idle(backoff);
      }
    }
  }

  function start(slot: ClaimedSlot) {
    const controller = new AbortController();
    const fence: SlotFence = { id: slot.id, generation: slot.generation, attempts: slot.attempts };
    const key = claimKey(fence);
    held.set(key, { fence, controller });
    const task = runSlot(slot, controller.signal).finally(() => {
      held.delete(key);
      tasks.delete(task);
      wake();
    });
    tasks.add(task);
  }

  /**
   * The providers a slot may use, in the order to try them: a project's failover list
   * (settings.providers) with the providers whose circuit is open moved to the end, or its one
   * provider.
   */
  function failoverOrder(settings: Record<string, unknown>, first: string): string[] {
    const list = Array.isArray(settings.providers) ? settings.providers.filter((p): p is string => typeof p === 'string') : [];
    if (list.length < 2) return [first];
    return [...list.filter((p) => !circuits.isOpen(p)), ...list.filter((p) => circuits.isOpen(p))];
  }

  /**
   * Calls the providers in turn until one makes the image: a transient failure (retries used
   * up, or an open circuit) moves on to the next; a permanent one, or the last provider's
   * failure, is the slot's. `using` is told each provider tried (the failure names the last).
   */
  async function generateWithFailover(
    names: readonly string[],
    request: Omit<GenerateRequest, 'signal' | 'seed'>,
    call: Omit<ProviderCall, 'canFailOver'>,
    using: (name: string) => void,
  ): Promise<{ provider: ImageProvider; image: GeneratedImage }> {
    for (const [i, name] of names.entries()) {
      using(name);
      const provider = o.providers.get(name);
      if (!provider) throw new Error(`provider "${name}" is not configured on this server`);
      const last = i === names.length - 1;
      try {
        return { provider, image: await callProvider(provider, request, { ...call, canFailOver: !last }) };
      } catch (err) {
        if (last || call.signal.aborted || !(err instanceof ProviderError) || !err.transient) throw err;
        call.log.warn({ err, provider: name, next: names[i + 1] }, 'provider failing: trying the next of the project');
      }
    }
    throw new Error('no provider to call');
  }

  async function runSlot(slot: ClaimedSlot, signal: AbortSignal): Promise<void> {
    const fence: SlotFence = { id: slot.id, generation: slot.generation, attempts: slot.attempts };
    const settings = slot.settings ?? {};
    let providerName = typeof settings.provider === 'string' ? settings.provider : o.defaultProvider;
    const style = typeof settings.style === 'string' ? settings.style : null;
    const model = typeof settings.model === 'string' ? settings.model : null;
    const aspectRatio: AspectRatio = ASPECT_RATIOS.includes(slot.aspectRatio as AspectRatio) ? (slot.aspectRatio as AspectRatio) : '16:9';
    const prompt = slot.prompt ?? '';
    const fullPrompt = fullPromptOf(prompt, style);
    const log = o.log.child({ slot: slot.id, projectId: slot.projectId, scene: slot.sceneIndex, image: slot.imageIndex });
    let storedKey: string | undefined;
    const tries = { calls: 0 };
    try {
      if (prompt.trim() === '') throw new Error('the scene has no prompt');
      const { width, height } = IMAGE_SIZES[aspectRatio];
      const request = { prompt, fullPrompt, aspectRatio, width, height, model };
      const { provider, image } = await generateWithFailover(failoverOrder(settings, providerName), request, { claim: claimKey(fence), signal, tries, log }, (name) => (providerName = name));
      const key = imageKey({ ...slot, attempt: slot.attempts, mimeType: image.mimeType });
      // The image is paid for: a failing store is retried on its own, never by generating again.
      // A refusal no retry can change (too large, type not allowed, bad key) fails the slot at once.
      const { url } = await pRetry(() => o.store.put(key, image.bytes, image.mimeType), {
        retries: o.maxAttempts - 1,
        minTimeout: o.retryBaseMs,
        randomize: true,
        signal,
        shouldRetry: ({ error }) => !(error instanceof StoreError && error.permanent),
        onFailedAttempt: ({ error, attemptNumber }) => log.warn({ err: error, attempt: attemptNumber }, 'could not store the image'),
      });
      storedKey = key;
      const succeeded: SucceededImage = {
        prompt,
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
        revisedPrompt: image.revisedPrompt ?? null,
        providerRequestId: image.providerRequestId ?? null,
        costUsd: o.priceOf?.({ provider: provider.name, model: image.model ?? model, width: image.width, height: image.height }) ?? null,
      };
      const retries = Math.max(0, tries.calls - 1);
      const result = await withDatabaseRetries(() => commit({ slot: fence, image: succeeded, retries }), log);
      if (!result) {
        // The database stayed unreachable: our lease will expire and the slot is retried.
        await removeQuietly(key, log);
        return;
      }
      if (!result.committed) {
        // Our claim was superseded (regenerated, or our lease expired and another worker
        // has the slot): the object we uploaded must never be referenced.
        log.warn('claim superseded before commit; discarding our image');
        await removeQuietly(key, log);
        return;
      }
      o.metrics?.imagesFinished.inc({ provider: provider.name, outcome: 'succeeded' });
      log.debug({ url }, 'image succeeded');
      if (result.previousKey && result.previousKey !== key) await removeQuietly(result.previousKey, log);
    } catch (err) {
      if (signal.aborted && !running) {
        // Shutting down: the slot was handed back; what we stored for it is nobody's.
        if (storedKey) await removeQuietly(storedKey, log);
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      const failure = {
        error: message,
        code: err instanceof ProviderError ? err.code : 'internal',
        provider: providerName,
        fullPrompt,
        providerRequestId: err instanceof ProviderError ? (err.providerRequestId ?? null) : null,
        retries: Math.max(0, tries.calls - 1),
      };
      log.warn({ err, calls: tries.calls }, 'image failed');
      const recorded = await withDatabaseRetries(() => markImageFailed(o.sql, workerId, fence, failure), log);
      if (recorded === false) log.warn('claim superseded before the failure could be recorded');
      else if (recorded !== undefined) o.metrics?.imagesFinished.inc({ provider: providerName, outcome: 'failed' });
      if (storedKey) await removeQuietly(storedKey, log);
    }
  }

  /**
   * A database error while recording an outcome is not the image's failure: retry with
   * backoff while we still hold the slot. Undefined when we gave up (the lease expires and
   * the slot is retried by whoever claims it next).
   */
  async function withDatabaseRetries<T>(write: () => Promise<T>, log: Logger): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (attempt >= COMMIT_TRIES || !running) {
          log.error({ err }, 'could not record the outcome; the slot will be retried when its lease expires');
          return undefined;
        }
        await sleep(Math.min(100 * 2 ** attempt, 5_000));
      }
    }
  }

  /**
   * Gives slots back to the queue, then aborts their work. The leases MUST go back BEFORE
   * the abort: once released, the fence (locked_by) turns every late write of ours into a
   * no-op, so an aborted call cannot mark its slot failed and a late success cannot win
   * over the next worker.
   */
  async function handBack(keys: string[], why: string) {
    const claims = keys.flatMap((key) => {
      const h = held.get(key);
      return h ? [h.fence] : [];
    });
    if (claims.length === 0) return;
    const released = await releaseLeases(o.sql, workerId, claims).catch((err) => {
      o.log.error({ err }, 'could not release leases; they will expire');
      return 0;
    });
    for (const key of keys) held.get(key)?.controller.abort(new Error('shutting down'));
    o.log.info({ released, why }, 'handed unfinished slots back to the queue');
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
        const ids = [...new Set([...held.values()].map((h) => h.fence.id))];
        extendLeases(o.sql, workerId, ids, o.leaseMs).catch((err) => o.log.warn({ err }, 'could not extend leases'));
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
      // Slots still waiting for the provider are handed back at once; the rest get the grace period.
      providerLimit.clearQueue();
      await handBack([...waiting], 'not started');
      const drained = Promise.allSettled([...tasks]);
      const timedOut = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
      ]);
      if (held.size > 0) await handBack([...held.keys()], timedOut ? 'grace period over' : 'unfinished');
      clearInterval(heartbeat);
    },
  };
}
