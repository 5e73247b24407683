-- Up Migration

-- The UPDATE branch of 1764201600000's notification matched old and new rows by id, so an
-- update that gives a row a new id (DELETE /images/:id empties its slot under a new id)
-- notified nobody, and an event stream saw the deletion only at the project's next change.
-- Rows are now matched with a FULL JOIN: a row on one side only is a change, and a row that
-- moved names both projects.
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
      SELECT DISTINCT unnest(ARRAY[n.content_creation_request_id, o.content_creation_request_id]) AS project_id
      FROM sceneworks_new_images n
      FULL JOIN sceneworks_old_images o ON o.id = n.id
      WHERE n.id IS NULL OR o.id IS NULL
         OR (n.status, n.image_url, n.storage_key, n.updated_at, n.content_creation_request_id)
            IS DISTINCT FROM (o.status, o.image_url, o.storage_key, o.updated_at, o.content_creation_request_id)
    ) AS touched
    WHERE touched.project_id IS NOT NULL;
  END IF;
  RETURN NULL;
END
$$;

-- No Down Migration: see 1763683200000_core.sql.
