-- Up Migration

-- Idempotency-Key of the actions on an existing project (POST /projects/:id/generate and
-- POST /projects/:id/scenes/:sceneIndex/regenerate). POST /projects keeps its key on the
-- project row it creates (content_creation_requests.idempotency_key).
-- One row per (owner, key): the primary key is what makes two concurrent twins of one request
-- queue work once. The row is inserted in the same transaction as the action it guards, so a
-- twin blocks on the key until the first commits (then sees it) or rolls back (then takes it).
-- `scope` says which action on which project the key was used for ('generate:<projectId>',
-- 'regenerate:<projectId>:<sceneIndex>'); `request_hash` covers the scope and the body.
-- A key older than the idempotency window (24 h) is replaced by its next use.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  owner_id uuid NOT NULL,
  key text NOT NULL,
  scope text NOT NULL,
  request_hash text NOT NULL,
  project_id uuid NOT NULL REFERENCES content_creation_requests (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner_id, key)
);

-- Purging expired keys: the oldest first.
CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);

-- ON DELETE CASCADE from a project looks its keys up by project.
CREATE INDEX IF NOT EXISTS idempotency_keys_project_idx ON idempotency_keys (project_id);

-- No Down Migration, like the others: keys are forgotten by age, never by a rollback.
