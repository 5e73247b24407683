-- Up Migration

-- What real providers tell us about each image: their request/prediction id (for support
-- tickets) and the prompt as the model rewrote it (OpenAI's revised_prompt).
ALTER TABLE generated_images
  ADD COLUMN IF NOT EXISTS provider_request_id text,
  ADD COLUMN IF NOT EXISTS revised_prompt text;

-- No Down Migration: dropping these would destroy what providers told us.
