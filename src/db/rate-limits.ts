import type { Sql } from './database.ts';

export interface WriteToken {
  allowed: boolean;
  /** The burst: how many writes a key may make at once (RATE_LIMIT_PER_MIN). */
  limit: number;
  /** Writes the key may still make now, after this one (0 when refused). */
  remaining: number;
  /** Whole seconds until one more write becomes available (≥ 1). */
  resetS: number;
  /** Refused: whole seconds until a retry will be allowed (≥ 1); allowed: 0. */
  retryAfterS: number;
}

const US_PER_S = 1_000_000;

/**
 * Takes one write token of `key` from a GCRA limiter of `perMinute` writes: a burst of
 * `perMinute`, refilled at perMinute/60 per second. The decision and its write are one
 * statement: ON CONFLICT DO UPDATE locks the key's row and evaluates its WHERE on the latest
 * committed version, so concurrent takes on any replica are decided one after another, never
 * read-then-write. Time is the database's clock, never a replica's (replicas whose clocks
 * disagree still share one limit), read by clock_timestamp() once the row is locked: a take
 * that waited for the lock is judged at the moment it is decided, not when it started.
 */
export async function takeWriteToken(sql: Sql, key: string, perMinute: number): Promise<WriteToken> {
  if (!Number.isInteger(perMinute) || perMinute < 1) throw new RangeError(`perMinute must be a positive integer, got ${perMinute}`);
  // Whole microseconds, timestamptz's resolution: the window is exactly perMinute intervals,
  // so the last write of a burst is never refused by a rounding error.
  const emissionUs = Math.max(1, Math.round((60 * US_PER_S) / perMinute));
  const windowUs = emissionUs * perMinute;
  const emission = sql`(${emissionUs}::float8 * interval '1 microsecond')`;
  const slack = sql`(${windowUs - emissionUs}::float8 * interval '1 microsecond')`;
  // Allowed when, after this write, tat is at most one window ahead of now: the stored tat at
  // most window - interval ahead. A first write (no row, or a purged one) always fits. A
  // refused take changes nothing (no row comes back).
  const taken = await sql<{ aheadUs: number }[]>`
    INSERT INTO owner_rate_limits AS r (key, tat)
    VALUES (${key}, clock_timestamp() + ${emission})
    ON CONFLICT (key) DO UPDATE
      SET tat = greatest(r.tat, clock_timestamp()) + ${emission}
      WHERE r.tat <= clock_timestamp() + ${slack}
    RETURNING (extract(epoch FROM r.tat - clock_timestamp()) * 1000000)::bigint AS ahead_us`;
  if (taken.length === 1) return allowedToken(taken[0]!.aheadUs, perMinute, emissionUs, windowUs);
  // Refused: when to retry is read apart, with a snapshot as new as the state that refused
  // this take (the decision's own statement may have seen an older one). Only this read, never
  // the decision, could be a moment late.
  const [row] = await sql<{ aheadUs: number }[]>`
    SELECT (extract(epoch FROM tat - clock_timestamp()) * 1000000)::bigint AS ahead_us
    FROM owner_rate_limits WHERE key = ${key}`;
  return refusedToken(row?.aheadUs ?? windowUs, perMinute, emissionUs, windowUs);
}

/** An allowed take, tat `aheadUs` ahead of now, as a client is told it. */
function allowedToken(aheadUs: number, limit: number, emissionUs: number, windowUs: number): WriteToken {
  const remaining = Math.min(limit - 1, Math.max(0, Math.floor((windowUs - aheadUs) / emissionUs)));
  // One more write is free when tat is back to (remaining + 1) intervals inside the window.
  const nextUs = aheadUs - windowUs + (remaining + 1) * emissionUs;
  return { allowed: true, limit, remaining, resetS: Math.max(1, Math.ceil(nextUs / US_PER_S)), retryAfterS: 0 };
}

/** A refused take: a write fits again when tat is one interval inside the window. */
function refusedToken(aheadUs: number, limit: number, emissionUs: number, windowUs: number): WriteToken {
  const retryAfterS = Math.max(1, Math.ceil((aheadUs + emissionUs - windowUs) / US_PER_S));
  return { allowed: false, limit, remaining: 0, resetS: retryAfterS, retryAfterS };
}

/**
 * Deletes keys idle for `olderThanMs`: their tat passed that long ago. A row whose tat has
 * passed is a full bucket, the same as no row, so this never changes a decision; a key taken
 * meanwhile has a tat in the future and is kept (READ COMMITTED re-checks the updated row).
 * Returns how many keys were deleted.
 */
export async function purgeIdleRateLimits(sql: Sql, olderThanMs: number): Promise<number> {
  // A negative age would delete live state and hand its keys a fresh burst.
  if (!(olderThanMs >= 0)) throw new RangeError(`olderThanMs must be ≥ 0, got ${olderThanMs}`);
  const deleted = await sql`
    DELETE FROM owner_rate_limits
    WHERE tat < clock_timestamp() - (${olderThanMs}::float8 * interval '1 millisecond')`;
  return deleted.count;
}
