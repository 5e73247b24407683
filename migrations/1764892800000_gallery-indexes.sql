-- Up Migration

-- GET /images for an operator acting for no one (every owner's images, AUTH=jwt service_role
-- without X-Owner-Id): the gallery indexes of 1764806400000 all lead with owner_id, and no
-- scan of them comes out in gallery order across owners; without these, a page would sort
-- the whole table. Ordered as the page is (newest first, keyset on (gallery_at, id)). Filters
-- by project use generated_images_gallery_project_idx whoever asks.
CREATE INDEX IF NOT EXISTS generated_images_gallery_all_idx
  ON generated_images (status, gallery_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS generated_images_gallery_all_favorite_idx
  ON generated_images (status, gallery_at DESC, id DESC) WHERE favorite;
CREATE INDEX IF NOT EXISTS generated_images_gallery_all_provider_idx
  ON generated_images (provider, status, gallery_at DESC, id DESC);

-- No Down Migration: see 1763683200000_core.sql.
