-- Up Migration

-- Written to adopt an existing legacy database as well as to create a fresh one:
-- every table and column is added only when missing, nothing is dropped or rewritten.

CREATE TABLE IF NOT EXISTS content_creation_requests (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid()
);

ALTER TABLE content_creation_requests
  ADD COLUMN IF NOT EXISTS user_id uuid,
  ADD COLUMN IF NOT EXISTS title text,
  ADD COLUMN IF NOT EXISTS generated_output jsonb NOT NULL DEFAULT '{"scenes": []}'::jsonb,
  ADD COLUMN IF NOT EXISTS settings jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN IF NOT EXISTS metadata jsonb,
  ADD COLUMN IF NOT EXISTS idempotency_key text,
  ADD COLUMN IF NOT EXISTS request_hash text,
  ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();

-- GET /projects: the owner's projects, newest first, keyset on (created_at, id).
CREATE INDEX IF NOT EXISTS content_creation_requests_owner_created_idx
  ON content_creation_requests (user_id, created_at DESC, id DESC);

-- Idempotency-Key: one project per (owner, key).
CREATE UNIQUE INDEX IF NOT EXISTS content_creation_requests_owner_idempotency_key
  ON content_creation_requests (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS generated_images (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  content_creation_request_id uuid NOT NULL REFERENCES content_creation_requests (id) ON DELETE CASCADE,
  scene_index integer NOT NULL,
  image_index integer NOT NULL,
  image_url text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT generated_images_slot_key UNIQUE (content_creation_request_id, scene_index, image_index)
);

-- Rows that exist before this migration are legacy images that were served: they become
-- 'succeeded'. New rows get 'queued' (the default is switched right after).
ALTER TABLE generated_images
  ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'succeeded'
    CONSTRAINT generated_images_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  ADD COLUMN IF NOT EXISTS storage_key text,
  ADD COLUMN IF NOT EXISTS prompt text,
  ADD COLUMN IF NOT EXISTS full_prompt text,
  ADD COLUMN IF NOT EXISTS provider text,
  ADD COLUMN IF NOT EXISTS model text,
  ADD COLUMN IF NOT EXISTS seed bigint,
  ADD COLUMN IF NOT EXISTS width integer,
  ADD COLUMN IF NOT EXISTS height integer,
  ADD COLUMN IF NOT EXISTS aspect_ratio text,
  ADD COLUMN IF NOT EXISTS mime_type text,
  ADD COLUMN IF NOT EXISTS bytes bigint,
  ADD COLUMN IF NOT EXISTS sha256 text,
  ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS error text,
  ADD COLUMN IF NOT EXISTS locked_by text,
  ADD COLUMN IF NOT EXISTS locked_until timestamptz,
  ADD COLUMN IF NOT EXISTS generation integer NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS queued_at timestamptz,
  ADD COLUMN IF NOT EXISTS details jsonb NOT NULL DEFAULT '{}'::jsonb;

ALTER TABLE generated_images ALTER COLUMN status SET DEFAULT 'queued';

-- The runner's claim: queued slots, oldest first.
CREATE INDEX IF NOT EXISTS generated_images_queued_idx
  ON generated_images (queued_at, id) WHERE status = 'queued';

-- The runner's recovery: running slots whose lease may have expired.
CREATE INDEX IF NOT EXISTS generated_images_running_lease_idx
  ON generated_images (locked_until) WHERE status = 'running';

-- No Down Migration: on an adopted legacy database a down would destroy data that predates us.
