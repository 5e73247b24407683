import type { SceneImage } from '../projects/merge.ts';
import type { ImageStatus } from '../projects/progress.ts';
import { toIso, type Sql } from './database.ts';

export interface NewSlot {
  sceneIndex: number;
  imageIndex: number;
  prompt: string;
}

export interface ImageRow {
  id: string;
  contentCreationRequestId: string;
  sceneIndex: number;
  imageIndex: number;
  status: ImageStatus;
  imageUrl: string | null;
  storageKey: string | null;
  width: number | null;
  height: number | null;
  mimeType: string | null;
  bytes: number | null;
  provider: string | null;
  model: string | null;
  seed: number | null;
  attempts: number;
  error: string | null;
  stale: boolean;
  generation: number;
  createdAt: string;
  updatedAt: string;
}

/** The notification channel that tells runners (of every replica) that slots were queued. */
export const QUEUE_CHANNEL = 'sceneworks_queue';

/**
 * The queue's virtual time: the lowest rank still queued. Slots queued now are ranked from
 * here, so they interleave with what is already waiting instead of queueing behind it.
 */
const QUEUE_NOW = 'coalesce((SELECT min(queue_rank) FROM slot_queue WHERE status = \'queued\'), 0)';

/**
 * Where the slots a project queues now start: the queue's virtual time, or after the project's
 * own slots still queued, whichever is later. A project's new work joins the end of its own line,
 * so however many requests queue it (a regenerate per scene), the project keeps its one slot per
 * step of the queue: ranked from the virtual time, 50 regenerates of one project would put 50
 * slots on each of the first steps, ahead of every other owner's first image. `except`: slots
 * being queued again, whose old places do not count.
 */
function queueStart(sql: Sql, projectId: string, except?: { sceneIndex: number; count: number }) {
  const others = except ? sql`AND NOT (scene_index = ${except.sceneIndex} AND image_index < ${except.count})` : sql``;
  return sql`(SELECT greatest(${sql.unsafe(QUEUE_NOW)},
    coalesce((SELECT max(queue_rank) FROM generated_images WHERE content_creation_request_id = ${projectId} AND status = 'queued' ${others}), 0)) AS r) now_rank`;
}

/**
 * Whose queue slots join, and how they are ranked in it. Slots queued now are ranked from the
 * queue's virtual time (or the end of their project's own queued slots, see queueStart), `spacing` apart: an owner with k projects already waiting spaces a new
 * project's slots k apart, so per step of the queue each owner gets about one slot whatever the
 * number of its projects (fair across owners), and projects interleave (fair across projects).
 * An approximation: slots queued earlier keep the spacing they were given.
 */
export interface Queueing {
  /** The owner the slots are pending for (null: an unowned project acted on by an operator). */
  ownerId: string | null;
  spacing: number;
}

/**
 * Queues slots: new ones are inserted as 'queued', ranked in the order given; existing ones
 * are left as they are. One statement for N slots.
 */
export async function insertQueuedSlots(sql: Sql, projectId: string, aspectRatio: string, slots: readonly NewSlot[], q: Queueing): Promise<number> {
  if (slots.length === 0) return 0;
  const result = await sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, prompt, aspect_ratio, queued_at, queue_rank, owner_id,
                                  generation)
    SELECT ${projectId}, s.scene_index, s.image_index, 'queued', s.prompt, ${aspectRatio}, clock_timestamp(),
           now_rank.r + s.ord * ${q.spacing}, ${q.ownerId}::uuid, floor.g
    FROM unnest(${slots.map((s) => s.sceneIndex)}::int[], ${slots.map((s) => s.imageIndex)}::int[], ${slots.map((s) => s.prompt)}::text[])
      WITH ORDINALITY AS s(scene_index, image_index, prompt, ord),
      ${queueStart(sql, projectId)},
      -- See deleteSurplusSlots: a slot created again never reuses a removed one's object keys.
      (SELECT coalesce((SELECT slot_generation_floor FROM content_creation_requests WHERE id = ${projectId}), 0) AS g) floor
    ON CONFLICT (content_creation_request_id, scene_index, image_index) DO NOTHING`;
  return result.count;
}

export interface LegacyImage {
  sceneIndex: number;
  imageIndex: number;
  url: string;
}

/**
 * Gives legacy images (URLs that lived only in the scene JSON) their rows, as succeeded
 * images, before a slot of their scene is queued, so none of them disappears from a scene
 * once that scene has rows. Existing rows win.
 */
export async function insertLegacyImages(sql: Sql, projectId: string, images: readonly LegacyImage[]): Promise<number> {
  if (images.length === 0) return 0;
  const result = await sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url, details, owner_id)
    SELECT ${projectId}, s.scene_index, s.image_index, 'succeeded', s.url, '{"source": "legacy"}'::jsonb,
           (SELECT user_id FROM content_creation_requests WHERE id = ${projectId})
    FROM unnest(${images.map((s) => s.sceneIndex)}::int[], ${images.map((s) => s.imageIndex)}::int[], ${images.map((s) => s.url)}::text[])
      AS s(scene_index, image_index, url)
    ON CONFLICT (content_creation_request_id, scene_index, image_index) DO NOTHING`;
  return result.count;
}

/**
 * Whether the slot's image was made from a prompt other than the slot's, which is its scene's
 * current prompt (regenerate and scene edits keep them in step). Rows from before image_prompt
 * existed are never stale.
 */
export const STALE = `(image_url IS NOT NULL OR storage_key IS NOT NULL) AND image_prompt IS NOT NULL AND image_prompt IS DISTINCT FROM prompt`;

/** An image as the API shows it, plus where it is stored (to sign a URL for a private store). */
export type StoredSceneImage = SceneImage & { storageKey: string | null };

/** Every image of a project, in one query whatever the number of scenes. */
export async function listProjectImages(sql: Sql, projectId: string): Promise<StoredSceneImage[]> {
  const rows = await sql<ImageRow[]>`
    SELECT ${sql.unsafe(SCENE_IMAGE_COLUMNS)}
    FROM generated_images WHERE content_creation_request_id = ${projectId}
    ORDER BY scene_index, image_index`;
  return rows.map(toSceneImage);
}

/** The columns of an image as scenes show it (an ImageRow); legacy rows may lack either timestamp. */
export const SCENE_IMAGE_COLUMNS = `id, scene_index, image_index, status, image_url, storage_key, width, height, mime_type, bytes, provider, model, seed,
  attempts, error, ${STALE} AS stale, coalesce(created_at, updated_at, now()) AS created_at,
  coalesce(updated_at, created_at, now()) AS updated_at`;

export function toSceneImage(r: ImageRow): StoredSceneImage {
  return {
    storageKey: r.storageKey,
    id: r.id,
    sceneIndex: r.sceneIndex,
    imageIndex: r.imageIndex,
    status: r.status,
    url: r.imageUrl,
    width: r.width,
    height: r.height,
    mimeType: r.mimeType,
    bytes: r.bytes,
    provider: r.provider,
    model: r.model,
    seed: r.seed,
    attempts: r.attempts,
    error: r.error,
    stale: r.stale,
    createdAt: toIso(r.createdAt),
    updatedAt: toIso(r.updatedAt),
  };
}

/** Scene indices of a project that have at least one row. */
export async function scenesWithRows(sql: Sql, projectId: string): Promise<Set<number>> {
  const rows = await sql<{ sceneIndex: number }[]>`
    SELECT DISTINCT scene_index FROM generated_images WHERE content_creation_request_id = ${projectId}`;
  return new Set(rows.map((r) => r.sceneIndex));
}

/**
 * Queues again every failed slot of a project (POST /projects/:id/generate). A new
 * generation fences any worker still holding an old claim. A slot without a prompt of its
 * own (a legacy row) takes its scene's prompt.
 */
export async function requeueFailedSlots(
  sql: Sql,
  projectId: string,
  scenePrompts: readonly { sceneIndex: number; prompt: string }[],
  q: Queueing,
): Promise<number> {
  const result = await sql`
    UPDATE generated_images g
    SET status = 'queued', generation = g.generation + 1, attempts = 0, error = NULL, queue_rank = now_rank.r + f.ord * ${q.spacing},
        owner_id = ${q.ownerId}::uuid,
        prompt = coalesce(g.prompt, (SELECT sp.prompt FROM unnest(${scenePrompts.map((s) => s.sceneIndex)}::int[], ${scenePrompts.map((s) => s.prompt)}::text[])
                                     AS sp(scene_index, prompt) WHERE sp.scene_index = g.scene_index LIMIT 1)),
        locked_by = NULL, locked_until = NULL, queued_at = clock_timestamp(), updated_at = now()
    FROM (SELECT id, row_number() OVER (ORDER BY scene_index, image_index) AS ord FROM generated_images
          WHERE content_creation_request_id = ${projectId} AND status = 'failed') f,
         ${queueStart(sql, projectId)}
    WHERE g.id = f.id`;
  return result.count;
}

/**
 * Queues a new generation of slots [0, count) of one scene. The slot keeps its current
 * image (url, key, size) until the new one succeeds; a worker still running the previous
 * generation is fenced out by the generation bump.
 */
export async function requeueSceneSlots(sql: Sql, projectId: string, sceneIndex: number, count: number, prompt: string, q: Queueing): Promise<number> {
  const result = await sql`
    UPDATE generated_images g
    SET status = 'queued', generation = g.generation + 1, attempts = 0, error = NULL, prompt = ${prompt},
        -- The image still served was made from the prompt the slot had (rows from before image_prompt).
        image_prompt = CASE WHEN g.image_url IS NOT NULL OR g.storage_key IS NOT NULL THEN coalesce(g.image_prompt, g.prompt) END,
        queue_rank = now_rank.r + (g.image_index + 1) * ${q.spacing}, owner_id = ${q.ownerId}::uuid,
        locked_by = NULL, locked_until = NULL, queued_at = clock_timestamp(), updated_at = now()
    FROM ${queueStart(sql, projectId, { sceneIndex, count })}
    WHERE g.content_creation_request_id = ${projectId} AND g.scene_index = ${sceneIndex} AND g.image_index < ${count}`;
  return result.count;
}

/** Removes the slots of a scene at or beyond `count`, and their kept versions; returns every stored key of them. */
export async function deleteSurplusSlots(sql: Sql, projectId: string, sceneIndex: number, count: number): Promise<string[]> {
  const rows = await sql<{ storageKey: string | null }[]>`
    WITH doomed AS (
      DELETE FROM generated_images
      WHERE content_creation_request_id = ${projectId} AND scene_index = ${sceneIndex} AND image_index >= ${count}
      RETURNING storage_key, generation
    ), floor AS (
      -- The removed objects are deleted after commit, by key; a slot created at one of these
      -- indexes later starts past every generation they reached, so its keys are new ones.
      -- (A slot's generation is at least that of any of its versions: restore bumps it too.)
      UPDATE content_creation_requests
      SET slot_generation_floor = greatest(slot_generation_floor, (SELECT max(generation) + 1 FROM doomed))
      WHERE id = ${projectId} AND EXISTS (SELECT 1 FROM doomed)
    )
    SELECT storage_key FROM doomed
    UNION ALL
    -- Read before the cascade removes them (one snapshot for the whole statement).
    SELECT storage_key FROM image_versions
    WHERE content_creation_request_id = ${projectId} AND scene_index = ${sceneIndex} AND image_index >= ${count}`;
  return rows.flatMap((r) => (r.storageKey ? [r.storageKey] : []));
}

export async function notifyQueued(sql: Sql): Promise<void> {
  await sql`SELECT pg_notify(${QUEUE_CHANNEL}, '')`;
}

/** How many slots a scene has: one past its highest image index (0 without rows). */
export async function sceneSlotCount(sql: Sql, projectId: string, sceneIndex: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT coalesce(max(image_index) + 1, 0)::int AS n FROM generated_images
    WHERE content_creation_request_id = ${projectId} AND scene_index = ${sceneIndex}`;
  return row?.n ?? 0;
}

/**
 * A scene's prompt was edited without regenerating: its slots take the new prompt (queued
 * ones generate it), and each image already there keeps the prompt it was made from, so it
 * reads as stale.
 */
export async function setSlotPrompts(sql: Sql, projectId: string, sceneIndex: number, prompt: string): Promise<void> {
  await sql`
    UPDATE generated_images
    SET image_prompt = CASE WHEN image_url IS NOT NULL OR storage_key IS NOT NULL THEN coalesce(image_prompt, prompt) END,
        prompt = ${prompt}, updated_at = now()
    WHERE content_creation_request_id = ${projectId} AND scene_index = ${sceneIndex} AND prompt IS DISTINCT FROM ${prompt}`;
}
