-- Up Migration

-- What a provider allows the whole deployment, shared by every replica (issue 14):
-- paused_until: a 429's Retry-After, so one replica told to slow down slows them all;
-- next_call_at: the earliest moment the next call may start under <PROVIDER>_RPM. Each call
-- reserves its moment with one UPDATE (moving next_call_at on by window / rpm), so calls are
-- spaced evenly across replicas and no window holds more than the limit. One small row per
-- provider, updated in place.
CREATE TABLE IF NOT EXISTS provider_limits (
  provider text PRIMARY KEY,
  paused_until timestamptz NOT NULL DEFAULT '-infinity',
  next_call_at timestamptz NOT NULL DEFAULT '-infinity'
);

-- Down Migration

DROP TABLE IF EXISTS provider_limits;
