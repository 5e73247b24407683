import { ProviderError, type ProviderErrorCode } from './provider.ts';

/**
 * Retry-After as milliseconds: delta-seconds ("2", "0.5") or an HTTP date; also the
 * non-standard retry-after-ms header some APIs send. Undefined when absent or unreadable.
 */
export function retryAfterMs(headers: Headers | Record<string, string | null | undefined> | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  // Any Headers (the global class, or undici's own from its fetch: not the same class).
  const isHeaders = typeof (headers as Headers).get === 'function';
  const get = (name: string) => (isHeaders ? (headers as Headers).get(name) : ((headers as Record<string, string | null | undefined>)[name] ?? (headers as Record<string, string | null | undefined>)[name.toLowerCase()])) ?? undefined;
  const ms = get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const value = get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Classifies an HTTP failure of a vendor API: 408, 409, 429 and 5xx are transient; other
 * 4xx are permanent (a content-policy refusal when `contentPolicy` says so, whatever its
 * status; else 401/403: the key).
 */
export function httpFailure(
  provider: string,
  status: number,
  message: string,
  o: { headers?: Headers | Record<string, string | null | undefined> | undefined; contentPolicy?: boolean; providerRequestId?: string | undefined; cause?: unknown } = {},
): ProviderError {
  let code: ProviderErrorCode;
  let transient: boolean;
  if (status === 429) [code, transient] = ['rate_limited', true];
  else if (status >= 500 || status === 408 || status === 409) [code, transient] = ['server', true];
  // Before 401/403: some vendors (Stability) refuse content with a 403.
  else if (o.contentPolicy) [code, transient] = ['content_policy', false];
  else if (status === 401 || status === 403) [code, transient] = ['auth', false];
  else if (status === 404) [code, transient] = ['not_found', false];
  else [code, transient] = ['bad_request', false];
  return new ProviderError(provider, `${provider} ${status}: ${message}`, {
    transient,
    code,
    status,
    retryAfterMs: retryAfterMs(o.headers),
    providerRequestId: o.providerRequestId,
    cause: o.cause,
  });
}

/** A failure before any HTTP answer (connection refused, reset, DNS): transient. */
export function networkFailure(provider: string, err: unknown): ProviderError {
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError(provider, `${provider}: network error: ${message}`, { transient: true, code: 'network', cause: err });
}

/** An answer we cannot use (malformed JSON, no image in it, not an image): transient, since a retry may well succeed. */
export function badResponse(provider: string, message: string, o: { providerRequestId?: string | undefined; cause?: unknown } = {}): ProviderError {
  return new ProviderError(provider, `${provider}: unusable response: ${message}`, {
    transient: true,
    code: 'bad_response',
    providerRequestId: o.providerRequestId,
    cause: o.cause,
  });
}

/** True for the errors fetch and SDKs throw when their AbortSignal fires. */
export function isAbortError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'AbortError' || err.name === 'TimeoutError' || err.constructor?.name === 'APIUserAbortError';
}
