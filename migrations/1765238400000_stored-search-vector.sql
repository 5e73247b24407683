-- Up Migration

-- GET /images?q= on 10 M images: the expression index of 1764806400000 made PostgreSQL compute
-- each candidate row's tsvector again to check it (a bitmap recheck, or the filter of an
-- ordered scan of an owner's gallery): ~20 us a row, 1-2.5 s for a search of common words.
-- The vector is now stored with the row (computed when the prompts change) and indexed as a
-- column. Adding it rewrites generated_images once, under an exclusive lock: on a large
-- table, apply it (npm run migrate) in a quiet moment.
ALTER TABLE generated_images
  ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig,
      coalesce(image_prompt, prompt, '') || ' ' || coalesce(full_prompt, '') || ' ' || coalesce(revised_prompt, ''))
  ) STORED;
CREATE INDEX IF NOT EXISTS generated_images_search_vector_idx ON generated_images USING gin (search_vector);
DROP INDEX IF EXISTS generated_images_search_idx;

-- The slot-counting trigger compares whole rows as jsonb; the vector need not be in them.
CREATE OR REPLACE FUNCTION sceneworks_count_slots() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[];
  signs int[];
  statuses text[];
BEGIN
  -- Each branch names only the transition tables of its own event (plpgsql plans lazily).
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(content_creation_request_id), array_agg(1), array_agg(status) INTO ids, signs, statuses
    FROM sceneworks_counted_inserted;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(content_creation_request_id), array_agg(-1), array_agg(status) INTO ids, signs, statuses
    FROM sceneworks_counted_deleted;
  ELSE
    -- Only rows whose change a client can see: a row equal to an old one but for its lease
    -- (the heartbeat) cancels out of both sides and changes nothing. search_vector follows
    -- the prompts, which are compared already.
    SELECT array_agg(x.id), array_agg(x.sign), array_agg(x.status) INTO ids, signs, statuses
    FROM (
      (SELECT n.content_creation_request_id AS id, 1 AS sign, n.status, to_jsonb(n) - 'locked_until' - 'search_vector' AS r FROM sceneworks_counted_new n
       EXCEPT ALL
       SELECT o.content_creation_request_id, 1, o.status, to_jsonb(o) - 'locked_until' - 'search_vector' FROM sceneworks_counted_old o)
      UNION ALL
      (SELECT o.content_creation_request_id, -1, o.status, to_jsonb(o) - 'locked_until' - 'search_vector' FROM sceneworks_counted_old o
       EXCEPT ALL
       SELECT n.content_creation_request_id, -1, n.status, to_jsonb(n) - 'locked_until' - 'search_vector' FROM sceneworks_counted_new n)
    ) x;
  END IF;
  PERFORM sceneworks_apply_slot_deltas(ids, signs, statuses);
  RETURN NULL;
END
$$;

-- No Down Migration: see 1763683200000_core.sql.
