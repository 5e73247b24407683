-- Up Migration

-- The hot queue in a table of its own. Every processed slot left dead entries at the low end
-- of generated_images' partial queue indexes (queued -> running -> succeeded), where the claim,
-- the queue position (read by every POST, generate and regenerate) and the lease recovery
-- all start; a vacuum of that table (millions of rows, every index read whole) is what
-- removes them, and even tuned (1765152000000) it comes only every ~20,000 dead rows and the
-- autovacuum naptime. slot_queue holds a row per slot only while it is queued or running
-- (tens of thousands at most, whatever the size of generated_images), kept in step by a
-- statement trigger in the same statement that changes a slot, and the runner vacuums it every
-- few seconds (a vacuum of a small table takes milliseconds). The queue's reads read it.
CREATE TABLE IF NOT EXISTS slot_queue (
  id uuid PRIMARY KEY,
  project_id uuid NOT NULL,
  status text NOT NULL,
  queue_rank bigint NOT NULL,
  queued_at timestamptz,
  locked_until timestamptz,
  owner_id uuid
);
CREATE INDEX IF NOT EXISTS slot_queue_claim_idx ON slot_queue (queue_rank, queued_at, id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS slot_queue_lease_idx ON slot_queue (locked_until) WHERE status = 'running';
ALTER TABLE slot_queue SET (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 1000,
  autovacuum_vacuum_cost_delay = 0
);

CREATE OR REPLACE FUNCTION sceneworks_mirror_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Each branch names only the transition tables of its own event (plpgsql plans lazily).
  IF TG_OP = 'INSERT' THEN
    INSERT INTO slot_queue (id, project_id, status, queue_rank, queued_at, locked_until, owner_id)
    SELECT n.id, n.content_creation_request_id, n.status, n.queue_rank, n.queued_at, n.locked_until, n.owner_id
    FROM sceneworks_queue_inserted n WHERE n.status IN ('queued', 'running')
    ON CONFLICT (id) DO NOTHING;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM slot_queue q USING sceneworks_queue_deleted o WHERE q.id = o.id AND o.status IN ('queued', 'running');
  ELSE
    DELETE FROM slot_queue q USING sceneworks_queue_new n
    WHERE q.id = n.id AND n.status NOT IN ('queued', 'running');
    -- Only rows whose queue fields changed (or that entered the queue): most updates of a
    -- pending slot (its prompt, a favorite) write nothing here.
    INSERT INTO slot_queue (id, project_id, status, queue_rank, queued_at, locked_until, owner_id)
    SELECT n.id, n.content_creation_request_id, n.status, n.queue_rank, n.queued_at, n.locked_until, n.owner_id
    FROM sceneworks_queue_new n JOIN sceneworks_queue_old o ON o.id = n.id
    WHERE n.status IN ('queued', 'running')
      AND (n.status, n.queue_rank, n.queued_at, n.locked_until, n.owner_id)
          IS DISTINCT FROM (o.status, o.queue_rank, o.queued_at, o.locked_until, o.owner_id)
    ON CONFLICT (id) DO UPDATE
      SET status = excluded.status, queue_rank = excluded.queue_rank, queued_at = excluded.queued_at,
          locked_until = excluded.locked_until, owner_id = excluded.owner_id;
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sceneworks_queue_inserted_slots ON generated_images;
CREATE TRIGGER sceneworks_queue_inserted_slots AFTER INSERT ON generated_images
  REFERENCING NEW TABLE AS sceneworks_queue_inserted FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_mirror_queue();
DROP TRIGGER IF EXISTS sceneworks_queue_updated_slots ON generated_images;
CREATE TRIGGER sceneworks_queue_updated_slots AFTER UPDATE ON generated_images
  REFERENCING OLD TABLE AS sceneworks_queue_old NEW TABLE AS sceneworks_queue_new FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_mirror_queue();
DROP TRIGGER IF EXISTS sceneworks_queue_deleted_slots ON generated_images;
CREATE TRIGGER sceneworks_queue_deleted_slots AFTER DELETE ON generated_images
  REFERENCING OLD TABLE AS sceneworks_queue_deleted FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_mirror_queue();

-- The slots pending now.
INSERT INTO slot_queue (id, project_id, status, queue_rank, queued_at, locked_until, owner_id)
SELECT id, content_creation_request_id, status, queue_rank, queued_at, locked_until, owner_id
FROM generated_images WHERE status IN ('queued', 'running')
ON CONFLICT (id) DO NOTHING;

-- generated_images' own queue indexes are read by nothing now (the claim, the position and the
-- recovery read slot_queue), and each cost a write whenever a slot entered the queue or a lease.
DROP INDEX IF EXISTS generated_images_queue_rank_idx;
DROP INDEX IF EXISTS generated_images_running_lease_idx;

-- No Down Migration: see 1763683200000_core.sql.
