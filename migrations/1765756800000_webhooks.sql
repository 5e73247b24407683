-- Up Migration

-- Webhooks (issue 14). A project may name a webhook ({url, events}); every event is written to
-- webhook_events in the transaction of the change that causes it, so no event exists for a
-- change that rolled back and no change commits without its event:
-- - image.succeeded / image.failed: a statement trigger on generated_images, for each slot
--   that went from running to succeeded or failed, whatever statement did it (the runner's
--   commit, its failure write, the recovery of an expired lease);
-- - project.finished: the counter fold (sceneworks_fold_slot_changes), when a fold that moved
--   some of a project's queued or running counts leaves it none (one fold at a time per
--   project row, so a project that finishes gets exactly one event per finish);
-- - project.deleted: the delete's own transaction (src/db/image-lifecycle.ts).
-- Deliveries (src/webhooks/) claim due events with SKIP LOCKED and log every attempt in
-- webhook_deliveries.
ALTER TABLE content_creation_requests ADD COLUMN IF NOT EXISTS webhook jsonb;

CREATE TABLE IF NOT EXISTS webhook_events (
  id uuid PRIMARY KEY,
  -- No foreign key: project.deleted outlives its project.
  project_id uuid NOT NULL,
  owner_id uuid,
  type text NOT NULL,
  url text NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'gone')),
  attempts int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_by text,
  locked_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_events_due_idx ON webhook_events (next_attempt_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id bigserial PRIMARY KEY,
  event_id uuid NOT NULL,
  project_id uuid NOT NULL,
  event text NOT NULL,
  attempt int NOT NULL,
  status text NOT NULL,
  response_status int,
  duration_ms int,
  error text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_project_idx ON webhook_deliveries (project_id, id);

CREATE OR REPLACE FUNCTION sceneworks_webhook_time() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE OR REPLACE FUNCTION sceneworks_image_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_events (id, project_id, owner_id, type, url, payload)
  SELECT gen_random_uuid(), n.content_creation_request_id, p.user_id, 'image.' || n.status, p.webhook->>'url',
         jsonb_build_object('type', 'image.' || n.status, 'timestamp', sceneworks_webhook_time(), 'data', jsonb_build_object(
           'projectId', n.content_creation_request_id, 'sceneIndex', n.scene_index, 'imageIndex', n.image_index,
           'image', jsonb_build_object('id', n.id, 'status', n.status, 'url', n.image_url, 'width', n.width, 'height', n.height,
             'mimeType', n.mime_type, 'bytes', n.bytes, 'provider', n.provider, 'model', n.model, 'seed', n.seed,
             'attempts', n.attempts, 'error', n.error, 'version', n.version, 'costUsd', n.cost_usd)))
  FROM new_rows n
  JOIN old_rows o ON o.id = n.id
  JOIN content_creation_requests p ON p.id = n.content_creation_request_id
  WHERE o.status = 'running' AND n.status IN ('succeeded', 'failed')
    AND p.webhook IS NOT NULL AND p.webhook->'events' ? ('image.' || n.status);
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS generated_images_webhooks ON generated_images;
CREATE TRIGGER generated_images_webhooks AFTER UPDATE ON generated_images
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_image_webhooks();

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
           sum(succeeded)::int AS succeeded, sum(failed)::int AS failed, count(*)::bigint AS changes,
           bool_or(queued <> 0 OR running <> 0) AS touched_pending
    FROM taken GROUP BY project_id
  ), applied AS (
    UPDATE content_creation_requests p
    SET slots_total = p.slots_total + s.total, slots_queued = p.slots_queued + s.queued,
        slots_running = p.slots_running + s.running, slots_succeeded = p.slots_succeeded + s.succeeded,
        slots_failed = p.slots_failed + s.failed, images_version = p.images_version + s.changes
    FROM sums s WHERE p.id = s.project_id
    RETURNING p.id, p.user_id, p.webhook, s.touched_pending, p.slots_total, p.slots_queued, p.slots_running,
              p.slots_succeeded, p.slots_failed
  ), finished AS (
    INSERT INTO webhook_events (id, project_id, owner_id, type, url, payload)
    SELECT gen_random_uuid(), a.id, a.user_id, 'project.finished', a.webhook->>'url',
           jsonb_build_object('type', 'project.finished', 'timestamp', sceneworks_webhook_time(), 'data', jsonb_build_object(
             'projectId', a.id,
             'status', CASE WHEN a.slots_failed = 0 THEN 'completed' WHEN a.slots_succeeded = 0 THEN 'failed' ELSE 'partial' END,
             'progress', jsonb_build_object('total', a.slots_total, 'queued', 0, 'running', 0,
                                            'succeeded', a.slots_succeeded, 'failed', a.slots_failed)))
    FROM applied a
    WHERE a.touched_pending AND a.slots_queued = 0 AND a.slots_running = 0 AND a.slots_total > 0
      AND a.webhook IS NOT NULL AND a.webhook->'events' ? 'project.finished'
  )
  SELECT (SELECT count(*) FROM taken)::int INTO folded;
  RETURN folded;
END
$$;

-- No Down Migration: see 1763683200000_core.sql.
