-- Up Migration

-- Limits and fairness per owner. Each slot names the owner it was queued for (set by every
-- statement that queues it), so "how many queued + running slots does this owner have" and
-- "how many of its projects are waiting" are answered from a partial index over pending slots
-- only: the cost is bounded by the owner's pending slots (at most MAX_PENDING_SLOTS_PER_OWNER),
-- never by its history, and no project or owner row is locked by the runner's writes.
ALTER TABLE generated_images ADD COLUMN IF NOT EXISTS owner_id uuid;

UPDATE generated_images g SET owner_id = p.user_id
FROM content_creation_requests p
WHERE p.id = g.content_creation_request_id AND g.status IN ('queued', 'running') AND g.owner_id IS NULL AND p.user_id IS NOT NULL;

CREATE INDEX IF NOT EXISTS generated_images_pending_owner_idx
  ON generated_images (owner_id, content_creation_request_id) WHERE status IN ('queued', 'running');

-- No Down Migration: see 1763683200000_core.sql.
