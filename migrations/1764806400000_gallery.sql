-- Up Migration

-- The gallery: every image a user made, findable, kept, restorable (issue "gallery").
-- generated_images stays one row per slot: the slot's current image. Images a regenerate
-- replaced are kept in image_versions, keyed by slot and version.

ALTER TABLE generated_images
  -- Favorited in the gallery.
  ADD COLUMN IF NOT EXISTS favorite boolean NOT NULL DEFAULT false,
  -- The current image's version (meaningful when the slot has an image; legacy images are 1).
  ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 1,
  -- The highest version this slot ever made: a new image is the next one, also after a restore.
  ADD COLUMN IF NOT EXISTS versions_made integer NOT NULL DEFAULT 0,
  -- The prompt the current image was made from (the slot's prompt may have changed since:
  -- the image is then stale). Null on rows from before: their prompt is the image's.
  ADD COLUMN IF NOT EXISTS image_prompt text,
  -- When the current claim started, and when the slot's outcome was written.
  ADD COLUMN IF NOT EXISTS started_at timestamptz,
  ADD COLUMN IF NOT EXISTS finished_at timestamptz,
  -- What the image cost, when the price is known (issue "webhooks, metrics, limits, costs").
  ADD COLUMN IF NOT EXISTS cost_usd numeric(12, 6),
  -- The gallery's order: when the slot's outcome last changed (a new image, a failure).
  ADD COLUMN IF NOT EXISTS gallery_at timestamptz NOT NULL DEFAULT now();

-- Rows from before: the owner (slots recorded it only while pending) and a gallery time.
-- One pass over the table, once, when adopting a database.
UPDATE generated_images g
SET owner_id = p.user_id, gallery_at = coalesce(g.updated_at, g.created_at, now())
FROM content_creation_requests p
WHERE p.id = g.content_creation_request_id
  AND (g.owner_id IS DISTINCT FROM p.user_id OR g.gallery_at <> coalesce(g.updated_at, g.created_at, now()));

-- GET /images: one index for each filter the page uses, each ordered as the page is (newest
-- first, keyset on (gallery_at, id)), so a page is an index range scan whatever the table size.
CREATE INDEX IF NOT EXISTS generated_images_gallery_idx
  ON generated_images (owner_id, status, gallery_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS generated_images_gallery_project_idx
  ON generated_images (content_creation_request_id, status, gallery_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS generated_images_gallery_favorite_idx
  ON generated_images (owner_id, status, gallery_at DESC, id DESC) WHERE favorite;
CREATE INDEX IF NOT EXISTS generated_images_gallery_provider_idx
  ON generated_images (owner_id, provider, status, gallery_at DESC, id DESC);
-- GET /images?q=: full-text search over the image's prompt, full prompt and revised prompt
-- ('simple': words as written, no stemming, any language). An expression index: no column to
-- add (no table rewrite), nothing recomputed by updates that do not change these columns.
-- src/db/gallery.ts repeats this expression exactly (the planner matches it textually).
CREATE INDEX IF NOT EXISTS generated_images_search_idx
  ON generated_images USING gin (
    to_tsvector('simple'::regconfig,
      coalesce(image_prompt, prompt, '') || ' ' || coalesce(full_prompt, '') || ' ' || coalesce(revised_prompt, ''))
  );

CREATE TABLE IF NOT EXISTS image_versions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  content_creation_request_id uuid NOT NULL,
  scene_index integer NOT NULL,
  image_index integer NOT NULL,
  version integer NOT NULL,
  owner_id uuid,
  image_url text,
  storage_key text,
  prompt text,
  full_prompt text,
  revised_prompt text,
  provider text,
  model text,
  seed bigint,
  width integer,
  height integer,
  aspect_ratio text,
  mime_type text,
  bytes bigint,
  sha256 text,
  provider_request_id text,
  attempts integer NOT NULL DEFAULT 0,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  cost_usd numeric(12, 6),
  favorite boolean NOT NULL DEFAULT false,
  queued_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  -- When the image was made, and when it stopped being current.
  created_at timestamptz NOT NULL DEFAULT now(),
  archived_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT image_versions_slot_version_key UNIQUE (content_creation_request_id, scene_index, image_index, version),
  -- A slot removed (a project deleted, a scene shrunk) takes its versions with it; their objects
  -- are removed by whoever removed the slot, from the keys the delete returns.
  CONSTRAINT image_versions_slot_fkey FOREIGN KEY (content_creation_request_id, scene_index, image_index)
    REFERENCES generated_images (content_creation_request_id, scene_index, image_index) ON DELETE CASCADE
);

-- Version ids in time order where the server has UUIDv7 (see 1764288000000).
DO $$
BEGIN
  IF to_regprocedure('uuidv7()') IS NOT NULL THEN
    ALTER TABLE image_versions ALTER COLUMN id SET DEFAULT uuidv7();
  END IF;
END
$$;

-- No Down Migration: see 1763683200000_core.sql.
