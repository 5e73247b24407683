-- Up Migration

-- The slot counters on each project row (migration 1764979200000) were updated by the very
-- statement that changed its slots: every writer of a project's slots took that project's row
-- lock and held it to commit, so the runner's commits, claims and failures of one project ran
-- one at a time (the single-project race bench fell from 1.69x to 0.63x of the legacy JSONB
-- writer; throughput -22%). And to keep those triggers from deadlocking with user actions,
-- every writer of slots had to lock the projects first.
--
-- Now a statement that changes slots only appends its per-project deltas here (an INSERT:
-- no lock anyone else waits for), and sceneworks_fold_slot_changes() adds them to the
-- project rows later, in one statement for many changes: the runner folds every half second
-- or so, and a listing folds what is pending before it reads (src/db/projects.ts), so what it
-- shows and filters on is exact as of its read. The project cache's freshness version counts
-- the pending changes too (findProjectVersion).
--
-- No foreign key: the changes of a project deleted meanwhile are folded into nothing.
CREATE TABLE IF NOT EXISTS project_slot_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id uuid NOT NULL,
  total int NOT NULL,
  queued int NOT NULL,
  running int NOT NULL,
  succeeded int NOT NULL,
  failed int NOT NULL
);
CREATE INDEX IF NOT EXISTS project_slot_changes_project_idx ON project_slot_changes (project_id, id);

-- Rows live for a second: vacuum after a fixed number of dead ones, whatever the table size.
ALTER TABLE project_slot_changes SET (
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 5000,
  autovacuum_vacuum_insert_scale_factor = 0,
  autovacuum_vacuum_insert_threshold = 5000,
  autovacuum_vacuum_cost_delay = 0
);

-- Same signature as before (the counting trigger calls it): now it appends, one row per project.
CREATE OR REPLACE FUNCTION sceneworks_apply_slot_deltas(ids uuid[], signs int[], statuses text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN RETURN; END IF;
  INSERT INTO project_slot_changes (project_id, total, queued, running, succeeded, failed)
  SELECT x.id, sum(x.sign)::int,
         coalesce(sum(x.sign) FILTER (WHERE x.status = 'queued'), 0)::int,
         coalesce(sum(x.sign) FILTER (WHERE x.status = 'running'), 0)::int,
         coalesce(sum(x.sign) FILTER (WHERE x.status = 'succeeded'), 0)::int,
         coalesce(sum(x.sign) FILTER (WHERE x.status = 'failed'), 0)::int
  FROM unnest(ids, signs, statuses) AS x(id, sign, status)
  GROUP BY x.id;
END
$$;

-- Adds the pending changes (up to max_changes, oldest first) to their projects and removes
-- them, in one transaction: a change is counted exactly once. Folders take the oldest changes,
-- so two at once always want the same first rows: the second waits on the first's row locks,
-- then skips what it deleted and folds the rest (so a listing that folds before it reads sees
-- a fold in progress elsewhere complete). It locks nothing but its changes and their project
-- rows: no writer of slots ever waits for it. Returns how many changes it folded.
CREATE OR REPLACE FUNCTION sceneworks_fold_slot_changes(max_changes int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  folded int;
BEGIN
  WITH taken AS (
    DELETE FROM project_slot_changes c
    WHERE c.id IN (SELECT id FROM project_slot_changes ORDER BY id LIMIT max_changes)
    RETURNING c.*
  ), sums AS (
    SELECT project_id, sum(total)::int AS total, sum(queued)::int AS queued, sum(running)::int AS running,
           sum(succeeded)::int AS succeeded, sum(failed)::int AS failed, count(*)::bigint AS changes
    FROM taken GROUP BY project_id
  ), applied AS (
    UPDATE content_creation_requests p
    SET slots_total = p.slots_total + s.total, slots_queued = p.slots_queued + s.queued,
        slots_running = p.slots_running + s.running, slots_succeeded = p.slots_succeeded + s.succeeded,
        slots_failed = p.slots_failed + s.failed, images_version = p.images_version + s.changes
    FROM sums s WHERE p.id = s.project_id
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM taken)::int INTO folded FROM (SELECT count(*) FROM applied) a;
  RETURN folded;
END
$$;

-- No Down Migration: see 1763683200000_core.sql.
