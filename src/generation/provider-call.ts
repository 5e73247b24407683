import { randomInt } from 'node:crypto';
import type { LimitFunction } from 'p-limit';
import pRetry, { AbortError as StopRetrying } from 'p-retry';
import type { Logger } from '../log.ts';
import { ProviderError, type GeneratedImage, type GenerateRequest, type ImageProvider } from '../providers/provider.ts';
import type { Metrics } from '../metrics.ts';
import type { Circuits } from './circuits.ts';
import { createProviderGate, type ProviderGate, type SharedLimits } from './provider-gate.ts';

export interface ProviderCallOptions {
  providers: ReadonlyMap<string, ImageProvider>;
  /** GENERATION_CONCURRENCY: a turn is taken per call, never held while backing off. */
  limit: LimitFunction;
  /** Claims waiting for a turn (the runner hands these back at once on shutdown). */
  waiting: Set<string>;
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  metrics?: Metrics | undefined;
  /** A provider's deployment-wide pause and rate limit (absent: this process's pause only). */
  sharedLimits?: ((provider: string) => SharedLimits | undefined) | undefined;
  /** Told of each call's outcome; an open circuit fails a call at once when the slot has another provider to go to. */
  circuits?: Circuits | undefined;
}

export interface ProviderCall {
  claim: string;
  signal: AbortSignal;
  /** Counts the calls actually made (every retry is an attempt on the row). */
  tries: { calls: number };
  log: Logger;
  /** The slot has another provider to fail over to: an open circuit stops this one at once. */
  canFailOver?: boolean | undefined;
}

/**
 * The policy for calling a provider: up to maxAttempts calls until it gives an image or a
 * permanent failure. Each call waits for a turn under GENERATION_CONCURRENCY, then for the
 * provider's own gate, and is cut off after timeoutMs (counted from the call itself, not
 * from the wait). Transient failures are retried with exponential backoff and jitter; a
 * 429 pauses the provider for the whole process for its Retry-After (or the backoff delay).
 */
export function createProviderCaller(o: ProviderCallOptions) {
  const gateOf = (p: ImageProvider) => createProviderGate(p.concurrency, { shared: o.sharedLimits?.(p.name) });
  const gates = new Map<string, ProviderGate>([...o.providers.values()].map((p) => [p.name, gateOf(p)]));

  return function callProvider(
    provider: ImageProvider,
    request: Omit<GenerateRequest, 'signal' | 'seed'>,
    { claim, signal, tries, log, canFailOver }: ProviderCall,
  ): Promise<GeneratedImage> {
    const gate = gates.get(provider.name) ?? gateOf(provider);
    return pRetry(
      async () => {
        o.waiting.add(claim);
        const turn = o.limit(async () => {
          o.waiting.delete(claim);
          signal.throwIfAborted();
          if (canFailOver && o.circuits?.isOpen(provider.name)) {
            throw new StopRetrying(new ProviderError(provider.name, `${provider.name}: circuit open after repeated failures`, { transient: true, code: 'server' }));
          }
          let timeout: AbortSignal | undefined;
          try {
            return await gate.run(async () => {
              tries.calls += 1;
              timeout = AbortSignal.timeout(o.timeoutMs);
              const stopTimer = o.metrics?.providerCallSeconds.startTimer({ provider: provider.name });
              try {
                const image = await provider.generate({ ...request, seed: randomInt(2 ** 31 - 1), signal: AbortSignal.any([signal, timeout]) });
                stopTimer?.({ outcome: 'ok' });
                o.circuits?.success(provider.name);
                return image;
              } catch (err) {
                stopTimer?.({ outcome: 'error' });
                throw err;
              }
            }, signal);
          } catch (err) {
            if (signal.aborted) throw new StopRetrying(err instanceof Error ? err : String(err));
            if (timeout?.aborted) {
              o.metrics?.providerErrors.inc({ provider: provider.name, code: 'timeout' });
              o.circuits?.failure(provider.name);
              throw new ProviderError(provider.name, `${provider.name}: no answer within ${o.timeoutMs} ms`, { transient: true, code: 'timeout', cause: err });
            }
            o.metrics?.providerErrors.inc({ provider: provider.name, code: err instanceof ProviderError ? err.code : 'internal' });
            if (err instanceof ProviderError && err.transient) o.circuits?.failure(provider.name);
            if (err instanceof ProviderError && err.code === 'rate_limited') o.metrics?.providerRateLimited.inc({ provider: provider.name });
            // Permanent failures, and errors that are not the provider's (bugs), are not retried.
            if (!(err instanceof ProviderError) || !err.transient) throw new StopRetrying(err instanceof Error ? err : String(err));
            throw err;
          }
        });
        return untilAborted(turn, signal).finally(() => o.waiting.delete(claim));
      },
      {
        retries: o.maxAttempts - 1,
        factor: 2,
        minTimeout: o.retryBaseMs,
        maxTimeout: 5 * 60_000,
        randomize: true,
        signal,
        onFailedAttempt: ({ error, attemptNumber, retriesLeft, retryDelay }) => {
          const e = error as ProviderError;
          if (e.code === 'rate_limited') gate.pause(e.retryAfterMs ?? retryDelay);
          if (retriesLeft > 0) o.metrics?.providerRetries.inc({ provider: provider.name });
          log.info({ provider: provider.name, code: e.code, attempt: attemptNumber, retriesLeft, retryAfterMs: e.retryAfterMs }, 'transient provider failure');
        },
      },
    );
  };
}

/** Rejects with the signal's reason as soon as it aborts, whatever `p` does. */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
