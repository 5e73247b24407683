-- Up Migration

-- Each project row carries its slot counts, its status and a version of its images, kept
-- exact by the statements that change slots (statement-level triggers with transition tables,
-- in the same transaction), so that:
--   * GET /projects?status=X is a keyset page of an index on (owner, status, created_at, id),
--     never a count over the slots of every project it skips;
--   * the project cache's freshness check reads one row (xmin and images_version), never a
--     sum over the project's slots.
--
-- Lock order (no deadlock between the runner and user actions): a statement that changes
-- slots locks their projects here, after its slot rows. Every transaction that changes slots
-- therefore locks the projects first, in id order (lockProjects* in src/db/project-locks.ts),
-- then their slots; the lock taken here is then one it already holds. A project lock is held
-- only to the end of a short transaction.
--
-- An UPDATE counts as a change of the project only when a client can see it: the lease
-- heartbeat (locked_until alone) changes nothing here and takes no project lock.

ALTER TABLE content_creation_requests
  ADD COLUMN IF NOT EXISTS slots_total int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS slots_queued int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS slots_running int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS slots_succeeded int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS slots_failed int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS images_version bigint NOT NULL DEFAULT 0;

-- The rule of projectStatus() in src/projects/progress.ts, kept by PostgreSQL.
ALTER TABLE content_creation_requests
  ADD COLUMN IF NOT EXISTS status text GENERATED ALWAYS AS (
    CASE
      WHEN slots_queued + slots_running > 0 THEN
        CASE WHEN slots_running = 0 AND slots_succeeded + slots_failed = 0 THEN 'queued' ELSE 'running' END
      WHEN slots_failed = 0 THEN 'completed'
      WHEN slots_succeeded = 0 THEN 'failed'
      ELSE 'partial'
    END
  ) STORED;

-- Existing projects: their counts as they are now.
UPDATE content_creation_requests p
SET slots_total = c.total, slots_queued = c.queued, slots_running = c.running,
    slots_succeeded = c.succeeded, slots_failed = c.failed
FROM (
  SELECT content_creation_request_id AS id, count(*) AS total,
         count(*) FILTER (WHERE status = 'queued') AS queued, count(*) FILTER (WHERE status = 'running') AS running,
         count(*) FILTER (WHERE status = 'succeeded') AS succeeded, count(*) FILTER (WHERE status = 'failed') AS failed
  FROM generated_images GROUP BY content_creation_request_id
) c
WHERE p.id = c.id;

CREATE INDEX IF NOT EXISTS content_creation_requests_owner_status_idx
  ON content_creation_requests (user_id, status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS content_creation_requests_status_idx
  ON content_creation_requests (status, created_at DESC, id DESC);

-- Adds per-slot deltas (project, +1/-1, status) to their projects' counters and bumps their
-- images_version. Projects are locked in id order first: a no-op for a caller that locked them
-- already (every caller in src/ does), and two statements can never lock them in opposite orders.
CREATE OR REPLACE FUNCTION sceneworks_apply_slot_deltas(ids uuid[], signs int[], statuses text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  PERFORM 1 FROM content_creation_requests p WHERE p.id = ANY(ids) ORDER BY p.id FOR NO KEY UPDATE;
  UPDATE content_creation_requests p
  SET slots_total = p.slots_total + d.total, slots_queued = p.slots_queued + d.queued,
      slots_running = p.slots_running + d.running, slots_succeeded = p.slots_succeeded + d.succeeded,
      slots_failed = p.slots_failed + d.failed, images_version = p.images_version + 1
  FROM (
    SELECT x.id, sum(x.sign)::int AS total,
           coalesce(sum(x.sign) FILTER (WHERE x.status = 'queued'), 0)::int AS queued,
           coalesce(sum(x.sign) FILTER (WHERE x.status = 'running'), 0)::int AS running,
           coalesce(sum(x.sign) FILTER (WHERE x.status = 'succeeded'), 0)::int AS succeeded,
           coalesce(sum(x.sign) FILTER (WHERE x.status = 'failed'), 0)::int AS failed
    FROM unnest(ids, signs, statuses) AS x(id, sign, status)
    GROUP BY x.id
  ) d
  WHERE p.id = d.id;
END
$$;

CREATE OR REPLACE FUNCTION sceneworks_count_slots() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[];
  signs int[];
  statuses text[];
BEGIN
  -- Each branch names only the transition tables of its own event (plpgsql plans lazily).
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(content_creation_request_id), array_agg(1), array_agg(status) INTO ids, signs, statuses
    FROM sceneworks_counted_inserted;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(content_creation_request_id), array_agg(-1), array_agg(status) INTO ids, signs, statuses
    FROM sceneworks_counted_deleted;
  ELSE
    -- Only rows whose change a client can see: a row equal to an old one but for its lease
    -- (the heartbeat) cancels out of both sides and changes nothing.
    SELECT array_agg(x.id), array_agg(x.sign), array_agg(x.status) INTO ids, signs, statuses
    FROM (
      (SELECT n.content_creation_request_id AS id, 1 AS sign, n.status, to_jsonb(n) - 'locked_until' AS r FROM sceneworks_counted_new n
       EXCEPT ALL
       SELECT o.content_creation_request_id, 1, o.status, to_jsonb(o) - 'locked_until' FROM sceneworks_counted_old o)
      UNION ALL
      (SELECT o.content_creation_request_id, -1, o.status, to_jsonb(o) - 'locked_until' FROM sceneworks_counted_old o
       EXCEPT ALL
       SELECT n.content_creation_request_id, -1, n.status, to_jsonb(n) - 'locked_until' FROM sceneworks_counted_new n)
    ) x;
  END IF;
  PERFORM sceneworks_apply_slot_deltas(ids, signs, statuses);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sceneworks_count_inserted_slots ON generated_images;
CREATE TRIGGER sceneworks_count_inserted_slots AFTER INSERT ON generated_images
  REFERENCING NEW TABLE AS sceneworks_counted_inserted FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_count_slots();
DROP TRIGGER IF EXISTS sceneworks_count_updated_slots ON generated_images;
CREATE TRIGGER sceneworks_count_updated_slots AFTER UPDATE ON generated_images
  REFERENCING OLD TABLE AS sceneworks_counted_old NEW TABLE AS sceneworks_counted_new FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_count_slots();
DROP TRIGGER IF EXISTS sceneworks_count_deleted_slots ON generated_images;
CREATE TRIGGER sceneworks_count_deleted_slots AFTER DELETE ON generated_images
  REFERENCING OLD TABLE AS sceneworks_counted_deleted FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_count_slots();

-- No Down Migration: see 1763683200000_core.sql.
