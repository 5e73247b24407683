import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import { SigningKeysUnavailableError } from './errors.ts';

/**
 * How long fetched keys are trusted before the set is fetched again: a key removed from the JWKS
 * (revoked) keeps verifying tokens for at most this long.
 */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60_000;
/**
 * After a fetch, a token naming an unknown `kid` is refused without fetching again for this long:
 * at most one refetch per cooldown however many unknown kids are sent (rotation is picked up,
 * a stream of made-up kids is not a stream of requests to the JWKS).
 */
export const JWKS_COOLDOWN_MS = 30_000;
export const JWKS_TIMEOUT_MS = 5_000;
/**
 * After a failed fetch, no fetch for this long. jose retries on every verification while it has no
 * usable set; without this, an outage of the JWKS would cost it one request per API request.
 */
export const JWKS_RETRY_AFTER_FAILURE_MS = 5_000;

/**
 * The keys of a remote JWKS, for `jwtVerify`: chosen by the token's `kid` (and its `alg` when the
 * JWK names one), cached, refetched on an unknown kid at most once per cooldown, never per request.
 * Throws SigningKeysUnavailableError when the set cannot be fetched; while backing off after such a
 * failure, keys fetched less than JWKS_CACHE_MAX_AGE_MS ago still verify tokens.
 */
export function createJwksKeys(url: string): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(url), {
    cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
    cooldownDuration: JWKS_COOLDOWN_MS,
    timeoutDuration: JWKS_TIMEOUT_MS,
  });
  let failedAt = Number.NEGATIVE_INFINITY;
  // The keys of the last good fetch, for the backoff; trusted only while jose still deems them fresh.
  let lastGood: JWTVerifyGetKey | undefined;

  return async (header, token) => {
    if (Date.now() < failedAt + JWKS_RETRY_AFTER_FAILURE_MS) {
      // MUST NOT fetch here: that is what the backoff is for.
      if (lastGood && remote.fresh) return lastGood(header, token);
      throw new SigningKeysUnavailableError(retryAfterS(failedAt));
    }
    try {
      return await remote(header, token);
    } catch (err) {
      if (!isFetchFailure(err)) throw err;
      failedAt = Date.now();
      const cached = remote.jwks();
      lastGood = cached ? createLocalJWKSet(cached) : undefined;
      throw new SigningKeysUnavailableError(retryAfterS(failedAt), { cause: err });
    }
  };
}

function retryAfterS(failedAt: number): number {
  return Math.max(1, Math.ceil((failedAt + JWKS_RETRY_AFTER_FAILURE_MS - Date.now()) / 1000));
}

/**
 * Errors of getting the set, as opposed to errors of the token. jose throws: JWKSTimeout; a bare
 * JOSEError (ERR_JOSE_GENERIC) for an answer that is not 200 or not JSON; JWKSInvalid for JSON that
 * is not a key set of public keys; and fetch's own TypeError when the host cannot be reached.
 * A token's own faults are other JOSEError subclasses (JWKSNoMatchingKey, JOSENotSupported...).
 * A published key that cannot be imported also lands here (a TypeError): the set's fault, a 503.
 */
function isFetchFailure(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true;
  return err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err.code === errors.JOSEError.code;
}
