-- Up Migration

-- GET /projects for an operator (every owner's projects), newest first, keyset on (created_at, id).
CREATE INDEX IF NOT EXISTS content_creation_requests_created_idx
  ON content_creation_requests (created_at DESC, id DESC);

-- No Down Migration: see 1763683200000_core.sql.
