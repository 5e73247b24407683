import type { Sql } from './database.ts';

/** A slot the runner holds a lease on. (id, generation, attempts) is its fencing token. */
export interface ClaimedSlot {
  id: string;
  projectId: string;
  sceneIndex: number;
  imageIndex: number;
  generation: number;
  attempts: number;
  prompt: string | null;
  aspectRatio: string | null;
  settings: Record<string, unknown> | null;
}

/**
 * Claims up to `limit` queued slots for this worker. SKIP LOCKED lets any number of
 * workers claim concurrently without waiting on or double-claiming each other's rows.
 */
export async function claimQueuedSlots(sql: Sql, workerId: string, limit: number, leaseMs: number): Promise<ClaimedSlot[]> {
  return sql<ClaimedSlot[]>`
    WITH picked AS (
      SELECT id FROM generated_images
      WHERE status = 'queued'
      ORDER BY queued_at, id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    )
    UPDATE generated_images g
    SET status = 'running', locked_by = ${workerId},
        locked_until = now() + make_interval(secs => ${leaseMs / 1000}),
        attempts = g.attempts + 1, updated_at = now()
    FROM picked, content_creation_requests p
    WHERE g.id = picked.id AND p.id = g.content_creation_request_id
    RETURNING g.id, g.content_creation_request_id AS project_id, g.scene_index, g.image_index, g.generation,
              g.attempts, g.prompt, g.aspect_ratio, p.settings`;
}

/** Extends the leases of the slots this worker is still running. One statement for all. */
export async function extendLeases(sql: Sql, workerId: string, ids: readonly string[], leaseMs: number): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await sql`
    UPDATE generated_images SET locked_until = now() + make_interval(secs => ${leaseMs / 1000})
    WHERE id = ANY(${ids}::uuid[]) AND locked_by = ${workerId} AND status = 'running'`;
  return result.count;
}

export interface SucceededImage {
  url: string;
  storageKey: string;
  fullPrompt: string;
  provider: string;
  model: string | null;
  seed: number | null;
  width: number;
  height: number;
  mimeType: string;
  bytes: number;
  sha256: string;
}

/**
 * Commits a generated image to its slot, only if this worker's claim is still the current
 * one (fenced by locked_by, generation and attempts). Returns whether it committed and the
 * storage key of the image it replaced (to remove after commit).
 */
export async function markImageSucceeded(
  sql: Sql,
  slot: { id: string; workerId: string; generation: number; attempts: number },
  image: SucceededImage,
): Promise<{ committed: boolean; previousKey: string | null }> {
  const rows = await sql<{ previousKey: string | null }[]>`
    WITH current AS (
      SELECT id, storage_key FROM generated_images
      WHERE id = ${slot.id} AND locked_by = ${slot.workerId} AND generation = ${slot.generation}
        AND attempts = ${slot.attempts} AND status = 'running'
      FOR UPDATE
    )
    UPDATE generated_images g
    SET status = 'succeeded', image_url = ${image.url}, storage_key = ${image.storageKey},
        full_prompt = ${image.fullPrompt}, provider = ${image.provider}, model = ${image.model}, seed = ${image.seed},
        width = ${image.width}, height = ${image.height}, mime_type = ${image.mimeType}, bytes = ${image.bytes},
        sha256 = ${image.sha256}, error = NULL, locked_by = NULL, locked_until = NULL, updated_at = now()
    FROM current WHERE g.id = current.id
    RETURNING current.storage_key AS previous_key`;
  const row = rows[0];
  return row ? { committed: true, previousKey: row.previousKey } : { committed: false, previousKey: null };
}

/**
 * Records a failure on the slot (fenced like markImageSucceeded). The slot keeps the image
 * it had, if any: a failed regenerate never takes away a served image.
 */
export async function markImageFailed(
  sql: Sql,
  slot: { id: string; workerId: string; generation: number; attempts: number },
  failure: { error: string; provider: string; fullPrompt: string | null },
): Promise<boolean> {
  const result = await sql`
    UPDATE generated_images
    SET status = 'failed', error = ${failure.error}, provider = ${failure.provider},
        full_prompt = coalesce(${failure.fullPrompt}, full_prompt),
        locked_by = NULL, locked_until = NULL, updated_at = now()
    WHERE id = ${slot.id} AND locked_by = ${slot.workerId} AND generation = ${slot.generation}
      AND attempts = ${slot.attempts} AND status = 'running'`;
  return result.count === 1;
}

/**
 * Slots whose lease expired (their worker died or hung) go back to the queue, or fail once
 * they have used `maxAttempts` claims, so a slot that kills its worker cannot loop forever.
 */
export async function recoverExpiredLeases(sql: Sql, maxAttempts: number): Promise<{ requeued: number; failed: number }> {
  const rows = await sql<{ status: string }[]>`
    UPDATE generated_images
    SET status = CASE WHEN attempts >= ${maxAttempts} THEN 'failed' ELSE 'queued' END,
        error = CASE WHEN attempts >= ${maxAttempts}
                     THEN 'abandoned: its worker stopped responding ' || attempts || ' times' ELSE error END,
        locked_by = NULL, locked_until = NULL, updated_at = now()
    WHERE status = 'running' AND locked_until < now()
    RETURNING status`;
  const failed = rows.filter((r) => r.status === 'failed').length;
  return { requeued: rows.length - failed, failed };
}

/** Gives this worker's unfinished slots back to the queue at once (graceful shutdown). */
export async function releaseLeases(sql: Sql, workerId: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const result = await sql`
    UPDATE generated_images
    SET status = 'queued', locked_by = NULL, locked_until = NULL, updated_at = now()
    WHERE id = ANY(${ids}::uuid[]) AND locked_by = ${workerId} AND status = 'running'`;
  return result.count;
}
