-- Up Migration

-- Adopting a legacy database, part two: what 1763683200000_core cannot do on its own. When the
-- legacy tables already exist, its CREATE TABLE IF NOT EXISTS is skipped as a whole, so the
-- defaults, columns and unique key written inside it never reach them; its ADD COLUMN IF NOT
-- EXISTS skips columns the legacy schema already has, with their legacy (missing) defaults.
-- On a database the core migration created, every step below finds its work done and changes
-- nothing. Nothing is dropped, and no row is rewritten except the one fix at the end.

-- Defaults the service relies on when it inserts (insertQueuedSlots leaves id, created_at and
-- updated_at to them). Set only where a column has none: a legacy default (say
-- uuid_generate_v4()) is kept as it is. A default touches the catalog only, never a row.
-- NOT NULL is not added: legacy columns may hold NULLs, and the service never writes one.
DO $$
DECLARE
  c record;
BEGIN
  FOR c IN
    SELECT v.tbl, v.col, v.expr
    FROM (VALUES
      ('content_creation_requests', 'id', 'gen_random_uuid()'),
      ('content_creation_requests', 'created_at', 'now()'),
      ('content_creation_requests', 'updated_at', 'now()'),
      ('generated_images', 'id', 'gen_random_uuid()'),
      ('generated_images', 'created_at', 'now()'),
      ('generated_images', 'updated_at', 'now()')
    ) AS v(tbl, col, expr)
    JOIN pg_attribute a ON a.attrelid = v.tbl::regclass AND a.attname = v.col AND NOT a.attisdropped
    WHERE NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = ''
  LOOP
    EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET DEFAULT %s', c.tbl, c.col, c.expr);
  END LOOP;
END
$$;

-- Columns of generated_images that the core migration declares only inside its CREATE TABLE.
-- The timestamps of rows that predate them read as the time of adoption.
ALTER TABLE generated_images
  ADD COLUMN IF NOT EXISTS image_url text,
  ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

-- The slot key: every INSERT ... ON CONFLICT (content_creation_request_id, scene_index,
-- image_index) needs a unique index on exactly those columns to infer. A legacy one, under
-- whatever name, serves as long as it is plain (no predicate, no expression), valid and not
-- deferrable (PostgreSQL refuses a deferrable constraint as an ON CONFLICT arbiter). If legacy
-- rows share a slot the key cannot be built: we stop and say which, rather than choose which
-- image of a slot to delete. The migration is retried, and passes, once they are resolved.
DO $$
DECLARE
  groups bigint;
  example record;
BEGIN
  IF EXISTS (
    SELECT 1
    FROM pg_index i
    WHERE i.indrelid = 'generated_images'::regclass
      AND i.indisunique AND i.indisvalid AND i.indimmediate
      AND i.indpred IS NULL AND i.indexprs IS NULL
      AND i.indnkeyatts = 3
      AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           WHERE k.ord <= i.indnkeyatts)
          = ARRAY['content_creation_request_id', 'image_index', 'scene_index']
  ) THEN
    RETURN;
  END IF;

  SELECT count(*) INTO groups FROM (
    SELECT 1 FROM generated_images
    WHERE content_creation_request_id IS NOT NULL AND scene_index IS NOT NULL AND image_index IS NOT NULL
    GROUP BY content_creation_request_id, scene_index, image_index
    HAVING count(*) > 1
  ) d;
  IF groups > 0 THEN
    SELECT content_creation_request_id, scene_index, image_index, count(*) AS n INTO example
    FROM generated_images
    WHERE content_creation_request_id IS NOT NULL AND scene_index IS NOT NULL AND image_index IS NOT NULL
    GROUP BY content_creation_request_id, scene_index, image_index
    HAVING count(*) > 1
    ORDER BY content_creation_request_id, scene_index, image_index
    LIMIT 1;
    RAISE EXCEPTION 'cannot adopt generated_images: % slot(s) have more than one row, e.g. project %, scene %, image % has % rows',
      groups, example.content_creation_request_id, example.scene_index, example.image_index, example.n
      USING HINT = 'Keep one row per (content_creation_request_id, scene_index, image_index), delete or re-index the others, '
                   'then run the migrations again. Nothing was deleted.';
  END IF;

  ALTER TABLE generated_images
    ADD CONSTRAINT generated_images_slot_key UNIQUE (content_creation_request_id, scene_index, image_index);
END
$$;

-- GET /projects pages through an owner's projects on (user_id, created_at DESC, id DESC):
-- content_creation_requests_owner_created_idx, which the core migration creates on legacy
-- tables too (CREATE INDEX IF NOT EXISTS runs whether the table was new or not). Nothing to do.

-- Legacy image rows without a URL. The core migration made every row that predated it
-- 'succeeded'; one with no image_url showed nothing, and counted as a success. It becomes
-- 'failed', with the reason, so that generate queues it again.
-- Which rows: 'succeeded' with neither image_url nor storage_key. The service never writes
-- such a row: a success it commits always has its storage_key (image_url alone may be NULL,
-- for a private store), and a legacy image it adopts from the scene JSON always has its URL.
-- The other conditions (no prompt, provider or attempt, empty details) hold for rows that
-- predate the core migration and that the service never touched, and make sure of it.
-- updated_at is left as it was: it stays the time of the legacy write.
UPDATE generated_images
SET status = 'failed', error = 'legacy row had no image URL'
WHERE status = 'succeeded' AND image_url IS NULL AND storage_key IS NULL
  AND prompt IS NULL AND provider IS NULL AND attempts = 0 AND details = '{}'::jsonb;

-- No Down Migration: every step above adopts data that predates us.
