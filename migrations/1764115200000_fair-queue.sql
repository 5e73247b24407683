-- Up Migration

-- Fair claiming across projects. Each queued slot gets a rank: the queue's current "virtual
-- time" (the lowest rank still queued) plus its position in what was queued with it. The
-- runner claims in rank order, so projects queued at different times interleave round-robin:
-- a 4-image project submitted after a 1,000-image one is served at once, not after it.
ALTER TABLE generated_images ADD COLUMN IF NOT EXISTS queue_rank bigint NOT NULL DEFAULT 0;

DROP INDEX IF EXISTS generated_images_queued_idx;
CREATE INDEX IF NOT EXISTS generated_images_queue_rank_idx
  ON generated_images (queue_rank, queued_at, id) WHERE status = 'queued';

-- No Down Migration: the rank is derived, but dropping it would undo fairness for running queues.
