import type { Context, MiddlewareHandler } from 'hono';
import type { Pool } from '../db/database.ts';
import { takeWriteToken, type WriteToken } from '../db/rate-limits.ts';
import { AppError } from '../errors.ts';
import type { AppEnv } from './env.ts';
import { setResponseHeader } from './response-headers.ts';

/** Reads change nothing and are never limited; OPTIONS is a CORS preflight. */
const UNLIMITED_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The name of the one policy, as the RateLimit field refers to it. */
const POLICY = 'writes';

/**
 * The fields of draft-ietf-httpapi-ratelimit-headers-11 (23 May 2026), the latest version:
 * each is a Structured Field List of Items whose value is a String naming the policy.
 * RateLimit-Policy: "writes";q=<limit>;w=60 (q quota in requests, w window in seconds).
 * RateLimit: "writes";r=<available>;t=<seconds> (r quota available now, t the effective
 * window: the seconds within which no more than r can be used, here until one more write
 * is restored; on a 429 it equals Retry-After, which -11 says must not come before the end
 * of the effective window). Not the Dictionary of -07 and earlier (limit=, remaining=, reset=).
 * Under GCRA the policy is a burst of q and a refill of q per w, so w is informative, as the
 * draft allows. No partition key (pk): it would be the owner id, which the draft advises
 * against exposing.
 */
export function rateLimitFields(token: WriteToken): Record<string, string> {
  return {
    'RateLimit-Policy': `"${POLICY}";q=${token.limit};w=60`,
    RateLimit: `"${POLICY}";r=${token.remaining};t=${token.resetS}`,
  };
}

export interface RateLimitWritesOptions {
  sql: Pool;
  /** Writes per key per minute (burst and refill); 0 turns the limit off. */
  perMinute: number;
  /** Whose writes these are (e.g. the owner); null: not limited. */
  keyOf: (c: Context<AppEnv>) => string | null;
}

/**
 * Limits writes per key, across replicas (state in PostgreSQL). Every answer to a write it
 * decided carries RateLimit-Policy and RateLimit; a refusal is a 429 RATE_LIMITED with
 * Retry-After (whole seconds, never before the effective window ends).
 * The fields are set on the context before anything can throw, so the error response that
 * onError builds with c.json() carries them: Hono merges headers set with c.header() into the
 * response a handler or the error handler makes.
 */
export function rateLimitWrites(o: RateLimitWritesOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (o.perMinute <= 0 || UNLIMITED_METHODS.has(c.req.method)) return next();
    const key = o.keyOf(c);
    if (key === null) return next();
    const token = await takeWriteToken(o.sql, key, o.perMinute);
    const fields = rateLimitFields(token);
    for (const [name, value] of Object.entries(fields)) c.header(name, value);
    if (!token.allowed) {
      c.header('Retry-After', String(token.retryAfterS));
      throw new AppError('RATE_LIMITED', `too many writes: at most ${token.limit} per minute; retry in ${token.retryAfterS} s`);
    }
    await next();
    // A handler that returns a Response of its own (not made with c.json/c.body) drops the
    // headers prepared above: set them on whatever response leaves.
    for (const [name, value] of Object.entries(fields)) setResponseHeader(c, name, value);
  };
}
