-- Up Migration

-- A slot removed when a scene shrinks and created again when it grows back must not reuse the
-- object keys of the removed one (keys name project, scene, image, generation and attempt):
-- the removed slot's objects are deleted after its transaction commits, and that delete would
-- take the new slot's first image with it. Removing slots raises this floor past every
-- generation they reached; new slots start at it.
ALTER TABLE content_creation_requests
  ADD COLUMN IF NOT EXISTS slot_generation_floor integer NOT NULL DEFAULT 0;

-- No Down Migration: see 1763683200000_core.sql.
