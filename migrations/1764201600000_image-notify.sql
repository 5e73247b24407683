-- Up Migration

-- GET /projects/:id/events: every replica LISTENs on 'sceneworks_images' and learns from it that
-- the images of a project changed, whichever process changed them. The payload is the project id.
-- Statement-level triggers with transition tables: ONE notification per distinct project a
-- statement touched, never one per row (the backfill inserts a million rows in a few statements;
-- PostgreSQL also folds identical notifications of one transaction into one).
-- An UPDATE notifies only for rows whose change a client can see (status, URL, stored object,
-- updated_at): the runner's lease heartbeat (locked_until only) notifies nobody.
-- Safe on an adopted legacy database: the function is replaced, the triggers recreated, and no
-- row is read or written. PostgreSQL allows transition tables on a trigger for one event only,
-- hence three triggers on one function.

CREATE OR REPLACE FUNCTION sceneworks_notify_image_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Each branch names only the transition tables of its own event (plpgsql plans lazily).
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_notify('sceneworks_images', touched.project_id::text)
    FROM (SELECT DISTINCT content_creation_request_id AS project_id FROM sceneworks_inserted_images) AS touched
    WHERE touched.project_id IS NOT NULL;
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('sceneworks_images', touched.project_id::text)
    FROM (SELECT DISTINCT content_creation_request_id AS project_id FROM sceneworks_deleted_images) AS touched
    WHERE touched.project_id IS NOT NULL;
  ELSE
    PERFORM pg_notify('sceneworks_images', touched.project_id::text)
    FROM (
      SELECT DISTINCT n.content_creation_request_id AS project_id
      FROM sceneworks_new_images n
      JOIN sceneworks_old_images o ON o.id = n.id
      WHERE (n.status, n.image_url, n.storage_key, n.updated_at, n.content_creation_request_id)
            IS DISTINCT FROM (o.status, o.image_url, o.storage_key, o.updated_at, o.content_creation_request_id)
    ) AS touched
    WHERE touched.project_id IS NOT NULL;
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS sceneworks_images_inserted ON generated_images;
CREATE TRIGGER sceneworks_images_inserted
  AFTER INSERT ON generated_images
  REFERENCING NEW TABLE AS sceneworks_inserted_images
  FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_notify_image_changes();

DROP TRIGGER IF EXISTS sceneworks_images_updated ON generated_images;
CREATE TRIGGER sceneworks_images_updated
  AFTER UPDATE ON generated_images
  REFERENCING OLD TABLE AS sceneworks_old_images NEW TABLE AS sceneworks_new_images
  FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_notify_image_changes();

-- Surplus slots removed by a regenerate change the project's progress.
DROP TRIGGER IF EXISTS sceneworks_images_deleted ON generated_images;
CREATE TRIGGER sceneworks_images_deleted
  AFTER DELETE ON generated_images
  REFERENCING OLD TABLE AS sceneworks_deleted_images
  FOR EACH STATEMENT EXECUTE FUNCTION sceneworks_notify_image_changes();

-- Down Migration

DROP TRIGGER IF EXISTS sceneworks_images_deleted ON generated_images;
DROP TRIGGER IF EXISTS sceneworks_images_updated ON generated_images;
DROP TRIGGER IF EXISTS sceneworks_images_inserted ON generated_images;
DROP FUNCTION IF EXISTS sceneworks_notify_image_changes();
