-- Up Migration

-- <PROVIDER>_CONCURRENCY for the whole deployment (PROVIDER_CONCURRENCY_SCOPE=cluster): one row
-- per permitted call in flight; a call takes a free row (or one whose lease ran out: its holder
-- died) with SKIP LOCKED, and frees it when the provider answers. Rows past the limit are
-- ignored, so lowering a limit needs no clean-up.
CREATE TABLE IF NOT EXISTS provider_call_slots (
  provider text NOT NULL,
  slot int NOT NULL,
  holder text,
  expires_at timestamptz,
  PRIMARY KEY (provider, slot)
);

-- Down Migration

DROP TABLE IF EXISTS provider_call_slots;
