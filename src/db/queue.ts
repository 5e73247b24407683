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
 * workers claim concurrently without waiting on or double-claiming each other's rows. The
 * order comes from slot_queue (migration 1765584000000: the pending slots only, vacuumed by
 * the runner), the lock and the check from the slot's own row.
 */
export async function claimQueuedSlots(sql: Sql, workerId: string, limit: number, leaseMs: number): Promise<ClaimedSlot[]> {
  return sql<ClaimedSlot[]>`
    WITH picked AS (
      -- slot_queue in its order (its claim index), and for each, the slot's own row, locked
      -- unless another worker holds it, and re-checked: a lateral subquery, so the plan can
      -- only walk the queue in order and stop at the limit.
      SELECT g.id FROM slot_queue q
      CROSS JOIN LATERAL (
        SELECT g.id FROM generated_images g WHERE g.id = q.id AND g.status = 'queued' FOR UPDATE SKIP LOCKED
      ) g
      WHERE q.status = 'queued'
      ORDER BY q.queue_rank, q.queued_at, q.id
      LIMIT ${limit}
    )
    UPDATE generated_images g
    SET status = 'running', locked_by = ${workerId},
        locked_until = now() + make_interval(secs => ${leaseMs / 1000}),
        attempts = g.attempts + 1, started_at = now(), updated_at = now()
    FROM picked, content_creation_requests p
    WHERE g.id = picked.id AND p.id = g.content_creation_request_id
    RETURNING g.id, g.content_creation_request_id AS project_id, g.scene_index, g.image_index, g.generation,
              g.attempts, g.prompt, coalesce(g.aspect_ratio, p.settings ->> 'aspectRatio') AS aspect_ratio, p.settings`;
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
  /** The prompt the image was made from (the claim's): the image is stale once its scene's prompt differs. */
  prompt: string;
  url: string | null;
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
  revisedPrompt: string | null;
  providerRequestId: string | null;
  /** What the image cost (PRICES_FILE and the defaults); null when its price is unknown. */
  costUsd: number | null;
}

export interface SlotFence {
  id: string;
  generation: number;
  /** The claim's attempt number: part of the fence, and of the object key. */
  attempts: number;
}

export interface SucceededSlot {
  slot: SlotFence;
  image: SucceededImage;
  /** Provider calls this claim made beyond its first (each retry counts as an attempt). */
  retries: number;
}

export interface CommitResult {
  committed: boolean;
  /** The storage key of the image this one replaced when it is not kept as a version: remove it after commit. */
  previousKey: string | null;
}

/**
 * Commits generated images to their slots, in one statement for N slots. Each commits only
 * if this worker's claim on it is still the current one (fenced by locked_by, generation
 * and attempts); results are in the order of `items`. Rows are locked in id order, so two
 * concurrent batches can never deadlock. The image a slot served until now is kept as a
 * version in the same statement (unless `keepVersions` is 0: then its key comes back, to
 * remove); see pruneVersions for the ones past the limit.
 *
 * Invariant: an item is matched to its row by its own position in the batch (`ord`), never
 * by the row id alone. One batch can hold two claims of the same row (a regenerate's new
 * claim finishing beside the superseded one); matching by id would let the stale image win
 * and tell both claims they committed.
 */
export async function markImagesSucceeded(
  sql: Sql,
  workerId: string,
  items: readonly SucceededSlot[],
  keepVersions: number,
): Promise<CommitResult[]> {
  if (items.length === 0) return [];
  const col = <T>(f: (x: SucceededSlot) => T) => items.map(f);
  const rows = await sql<{ ord: number; previousKey: string | null }[]>`
    WITH input AS (
      SELECT * FROM unnest(
        ${col((x) => x.slot.id)}::uuid[], ${col((x) => x.slot.generation)}::int[], ${col((x) => x.slot.attempts)}::int[],
        ${col((x) => x.image.url)}::text[], ${col((x) => x.image.storageKey)}::text[], ${col((x) => x.image.fullPrompt)}::text[],
        ${col((x) => x.image.provider)}::text[], ${col((x) => x.image.model)}::text[], ${col((x) => x.image.seed)}::bigint[],
        ${col((x) => x.image.width)}::int[], ${col((x) => x.image.height)}::int[], ${col((x) => x.image.mimeType)}::text[],
        ${col((x) => x.image.bytes)}::bigint[], ${col((x) => x.image.sha256)}::text[],
        ${col((x) => x.image.revisedPrompt)}::text[], ${col((x) => x.image.providerRequestId)}::text[], ${col((x) => x.retries)}::int[],
        ${col((x) => x.image.prompt)}::text[], ${col((x) => x.image.costUsd)}::numeric[]
      ) WITH ORDINALITY AS i(id, generation, attempts, url, storage_key, full_prompt, provider, model, seed, width, height, mime_type,
                             bytes, sha256, revised_prompt, provider_request_id, retries, image_prompt, cost_usd, ord)
    ), current AS (
      SELECT g.*, i.ord, (g.image_url IS NOT NULL OR g.storage_key IS NOT NULL) AS has_image
      FROM generated_images g JOIN input i ON i.id = g.id
      WHERE g.locked_by = ${workerId} AND g.generation = i.generation AND g.attempts = i.attempts AND g.status = 'running'
      ORDER BY g.id
      FOR UPDATE OF g
    ), kept AS (
      INSERT INTO image_versions (content_creation_request_id, scene_index, image_index, version, owner_id, image_url, storage_key,
                                  prompt, full_prompt, revised_prompt, provider, model, seed, width, height, aspect_ratio, mime_type,
                                  bytes, sha256, provider_request_id, attempts, details, cost_usd, favorite, queued_at, started_at,
                                  finished_at, created_at)
      SELECT c.content_creation_request_id, c.scene_index, c.image_index, c.version, c.owner_id, c.image_url, c.storage_key,
             coalesce(c.image_prompt, c.prompt), c.full_prompt, c.revised_prompt, c.provider, c.model, c.seed, c.width, c.height,
             c.aspect_ratio, c.mime_type, c.bytes, c.sha256, c.provider_request_id, c.attempts, c.details, c.cost_usd, c.favorite,
             c.queued_at, c.started_at, c.finished_at, coalesce(c.finished_at, c.updated_at, c.created_at, now())
      FROM current c WHERE c.has_image AND ${keepVersions} > 0
      ON CONFLICT (content_creation_request_id, scene_index, image_index, version) DO NOTHING
    )
    UPDATE generated_images g
    SET status = 'succeeded', image_url = i.url, storage_key = i.storage_key, full_prompt = i.full_prompt,
        provider = i.provider, model = i.model, seed = i.seed, width = i.width, height = i.height,
        mime_type = i.mime_type, bytes = i.bytes, sha256 = i.sha256, revised_prompt = i.revised_prompt,
        provider_request_id = i.provider_request_id, attempts = g.attempts + i.retries, error = NULL,
        image_prompt = i.image_prompt, favorite = false, cost_usd = i.cost_usd,
        version = greatest(c.versions_made, CASE WHEN c.has_image THEN c.version ELSE 0 END) + 1,
        versions_made = greatest(c.versions_made, CASE WHEN c.has_image THEN c.version ELSE 0 END) + 1,
        locked_by = NULL, locked_until = NULL, finished_at = now(), gallery_at = now(), updated_at = now()
    FROM current c JOIN input i ON i.ord = c.ord
    WHERE g.id = c.id
    RETURNING c.ord::int AS ord, CASE WHEN ${keepVersions} > 0 THEN NULL ELSE c.storage_key END AS previous_key`;
  const byOrd = new Map(rows.map((r) => [r.ord, r.previousKey]));
  return items.map((_, index) =>
    byOrd.has(index + 1) ? { committed: true, previousKey: byOrd.get(index + 1) ?? null } : { committed: false, previousKey: null },
  );
}

/**
 * Removes, for these slots, the kept versions past the newest `keep`, and returns their
 * storage keys (to remove after commit).
 */
export async function pruneVersions(sql: Sql, slotIds: readonly string[], keep: number): Promise<string[]> {
  if (slotIds.length === 0) return [];
  const rows = await sql<{ storageKey: string | null }[]>`
    DELETE FROM image_versions v
    USING (
      SELECT x.id FROM (
        SELECT v.id, row_number() OVER (PARTITION BY v.content_creation_request_id, v.scene_index, v.image_index ORDER BY v.version DESC) AS n
        FROM image_versions v JOIN generated_images g
          ON (g.content_creation_request_id, g.scene_index, g.image_index) = (v.content_creation_request_id, v.scene_index, v.image_index)
        WHERE g.id = ANY(${slotIds}::uuid[])
      ) x WHERE x.n > ${keep}
    ) doomed
    WHERE v.id = doomed.id
    RETURNING v.storage_key`;
  return rows.flatMap((r) => (r.storageKey ? [r.storageKey] : []));
}

/**
 * Records a failure on the slot (fenced like markImageSucceeded). The slot keeps the image
 * it had, if any: a failed regenerate never takes away a served image.
 */
export async function markImageFailed(
  sql: Sql,
  workerId: string,
  slot: SlotFence,
  failure: { error: string; code: string; provider: string; fullPrompt: string | null; providerRequestId: string | null; retries: number },
): Promise<boolean> {
  const result = await sql`
    UPDATE generated_images
    SET status = 'failed', error = ${failure.error}, provider = ${failure.provider},
        full_prompt = coalesce(${failure.fullPrompt}, full_prompt), attempts = attempts + ${failure.retries},
        provider_request_id = coalesce(${failure.providerRequestId}, provider_request_id),
        details = details || jsonb_build_object('errorCode', ${failure.code}::text),
        locked_by = NULL, locked_until = NULL, finished_at = now(), gallery_at = now(), updated_at = now()
    WHERE id = ${slot.id} AND locked_by = ${workerId} AND generation = ${slot.generation}
      AND attempts = ${slot.attempts} AND status = 'running'`;
  return result.count === 1;
}

/** A claim that was abandoned: enough to name the object its worker may have uploaded. */
export interface AbandonedClaim {
  projectId: string;
  sceneIndex: number;
  imageIndex: number;
  generation: number;
  attempts: number;
  status: 'queued' | 'failed';
}

/**
 * Slots whose lease expired (their worker died or hung) go back to the queue, or fail once
 * they have used `maxAttempts` claims, so a slot that kills its worker cannot loop forever.
 * Returns the abandoned claims, so the objects they may have uploaded can be removed.
 */
export async function recoverExpiredLeases(sql: Sql, maxAttempts: number): Promise<AbandonedClaim[]> {
  return sql<AbandonedClaim[]>`
    UPDATE generated_images
    SET status = CASE WHEN attempts >= ${maxAttempts} THEN 'failed' ELSE 'queued' END,
        error = CASE WHEN attempts >= ${maxAttempts}
                     THEN 'abandoned: its worker stopped responding ' || attempts || ' times' ELSE error END,
        locked_by = NULL, locked_until = NULL, updated_at = now()
    WHERE id IN (SELECT id FROM slot_queue WHERE status = 'running' AND locked_until < now())
      AND status = 'running' AND locked_until < now()
    RETURNING content_creation_request_id AS project_id, scene_index, image_index, generation, attempts, status`;
}

/** Gives these claims of this worker back to the queue at once (graceful shutdown), fenced like a commit. */
export async function releaseLeases(sql: Sql, workerId: string, claims: readonly SlotFence[]): Promise<number> {
  if (claims.length === 0) return 0;
  const result = await sql`
    UPDATE generated_images g
    SET status = 'queued', locked_by = NULL, locked_until = NULL, updated_at = now()
    FROM unnest(${claims.map((c) => c.id)}::uuid[], ${claims.map((c) => c.generation)}::int[], ${claims.map((c) => c.attempts)}::int[])
      AS c(id, generation, attempts)
    WHERE g.id = c.id AND g.generation = c.generation AND g.attempts = c.attempts
      AND g.locked_by = ${workerId} AND g.status = 'running'`;
  return result.count;
}

/**
 * Removes the dead rows and index entries that claims, commits and heartbeats leave in
 * slot_queue, whose reads (claim, queue position, recovery) start at the low end where they
 * pile up, and keeps its statistics current (its size swings from none to tens of thousands).
 * The table holds the pending slots only, so this takes milliseconds; SKIP_LOCKED: a vacuum
 * another replica is running is not waited for.
 */
export async function vacuumQueue(sql: Sql): Promise<void> {
  await sql`VACUUM (ANALYZE, SKIP_LOCKED) slot_queue`;
}
