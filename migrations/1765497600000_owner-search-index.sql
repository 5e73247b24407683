-- Up Migration

-- GET /images?q= for one owner: the search index now leads with owner_id (btree_gin makes a
-- uuid a GIN key), so a bitmap of an owner's matches is exact inside the index instead of a
-- bitmap of every owner's matches (34,000 heap pages read for 900 rows of one owner at 10 M
-- images). The unowned (legacy) images, the second arm of a single-owner or operator page,
-- get a small index of their own (GIN cannot search for owner_id IS NULL). An operator's
-- search of everyone's images uses the search_vector part of the first. At 10 M images: 274 MB
-- (the search_vector index it replaces was 252 MB) + 6 MB. src/db/gallery.ts (searchPage)
-- says when a search uses these and when an ordered scan.
--
-- btree_gin ships with PostgreSQL (contrib) and is a trusted extension (PostgreSQL 13+): the
-- database owner can create it; Supabase has it.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX IF NOT EXISTS generated_images_owner_search_idx ON generated_images USING gin (owner_id, search_vector);
CREATE INDEX IF NOT EXISTS generated_images_unowned_search_idx ON generated_images USING gin (search_vector) WHERE owner_id IS NULL;
DROP INDEX IF EXISTS generated_images_search_vector_idx;

-- No Down Migration: see 1763683200000_core.sql.
