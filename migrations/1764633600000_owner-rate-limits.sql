-- Up Migration

-- Writes per owner per minute (RATE_LIMIT_PER_MIN), shared by every replica: a GCRA limiter
-- (generic cell rate algorithm) whose whole state is one row per key, the theoretical arrival
-- time `tat` of the next request. A request is allowed when, after it, tat is at most one
-- window (the limit's worth of emission intervals) ahead of now; allowing it moves tat one
-- interval further. Decided and written by one INSERT … ON CONFLICT DO UPDATE … WHERE (see
-- src/db/rate-limits.ts): the row lock serialises concurrent takes of a key, whatever replica
-- they come from, so together they never pass the limit.
-- A row whose tat has passed is the same as no row (a full bucket): purgeIdleRateLimits()
-- deletes such rows, so the table holds only recently active keys.
-- No index on tat: every take changes it, and an index on it would turn these one-row updates
-- from HOT updates into index writes; the purge scans a table of active keys only.
CREATE TABLE IF NOT EXISTS owner_rate_limits (
  key text PRIMARY KEY,
  tat timestamptz NOT NULL
) WITH (fillfactor = 50);

-- No Down Migration: see 1763683200000_core.sql.
