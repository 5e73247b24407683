import type { Sql } from './database.ts';
import { ownedBy, type Scope } from './scope.ts';

/**
 * An image as the gallery shows it (the contract's ImageRecord), read from one slot row
 * (generated_images g, the current image) or one kept version (image_versions v), joined with
 * its project (content_creation_requests p). Every query for records selects these columns.
 */
export interface ImageRecordRow {
  id: string;
  projectId: string;
  projectTitle: string | null;
  sceneIndex: number;
  imageIndex: number;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  imageUrl: string | null;
  storageKey: string | null;
  width: number | null;
  height: number | null;
  mimeType: string | null;
  bytes: number | null;
  sha256: string | null;
  provider: string | null;
  model: string | null;
  seed: number | null;
  attempts: number;
  error: string | null;
  prompt: string | null;
  fullPrompt: string | null;
  revisedPrompt: string | null;
  style: string | null;
  aspectRatio: string | null;
  providerRequestId: string | null;
  favorite: boolean;
  stale: boolean;
  version: number;
  current: boolean;
  costUsd: string | null;
  queuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** The gallery's order key (PostgreSQL text, full precision, for cursors). */
  galleryAt: string;
}

/** The prompt an image was made from: rows from before image_prompt existed made theirs from `prompt`. */
export const IMAGE_PROMPT = 'coalesce(g.image_prompt, g.prompt)';

/** The record columns of a slot row g (its current image) with its project p. */
export function slotRecordColumns(sql: Sql) {
  return sql`
    g.id, g.content_creation_request_id AS project_id, p.title AS project_title, g.scene_index, g.image_index, g.status,
    g.image_url, g.storage_key, g.width, g.height, g.mime_type, g.bytes, g.sha256, g.provider, g.model, g.seed, g.attempts, g.error,
    ${sql.unsafe(IMAGE_PROMPT)} AS prompt, g.full_prompt, g.revised_prompt, p.settings ->> 'style' AS style,
    coalesce(g.aspect_ratio, p.settings ->> 'aspectRatio') AS aspect_ratio, g.provider_request_id, g.favorite,
    (g.image_url IS NOT NULL OR g.storage_key IS NOT NULL) AND g.image_prompt IS DISTINCT FROM NULL AND g.image_prompt IS DISTINCT FROM g.prompt AS stale,
    g.version, true AS current, g.cost_usd::text AS cost_usd, g.queued_at, g.started_at, g.finished_at,
    coalesce(g.created_at, g.updated_at, now()) AS created_at, coalesce(g.updated_at, g.created_at, now()) AS updated_at, g.gallery_at`;
}

/** One slot's record, when its project is in scope. */
export async function findImageRecord(sql: Sql, scope: Scope, id: string): Promise<ImageRecordRow | undefined> {
  const rows = await sql<ImageRecordRow[]>`
    SELECT ${slotRecordColumns(sql)}
    FROM generated_images g JOIN content_creation_requests p ON p.id = g.content_creation_request_id
    WHERE g.id = ${id} AND ${ownedBy(sql, scope, 'p.user_id')}`;
  return rows[0];
}

/**
 * A slot's images, newest version first: the current one (when the slot has an image) and
 * every kept version, each stale when made from a prompt other than the slot's current one.
 */
export async function listSlotVersions(sql: Sql, scope: Scope, slotId: string): Promise<ImageRecordRow[] | undefined> {
  const [slot] = await findSlotOf(sql, scope, slotId);
  if (!slot) return undefined;
  return sql<ImageRecordRow[]>`
    SELECT * FROM (
      SELECT ${slotRecordColumns(sql)}
      FROM generated_images g JOIN content_creation_requests p ON p.id = g.content_creation_request_id
      WHERE g.id = ${slotId} AND (g.image_url IS NOT NULL OR g.storage_key IS NOT NULL)
      UNION ALL
      SELECT v.id, v.content_creation_request_id, p.title, v.scene_index, v.image_index, 'succeeded', v.image_url, v.storage_key,
             v.width, v.height, v.mime_type, v.bytes, v.sha256, v.provider, v.model, v.seed, v.attempts, NULL, v.prompt,
             v.full_prompt, v.revised_prompt, p.settings ->> 'style', coalesce(v.aspect_ratio, p.settings ->> 'aspectRatio'),
             v.provider_request_id, v.favorite, v.prompt IS DISTINCT FROM g.prompt, v.version, false, v.cost_usd::text,
             v.queued_at, v.started_at, v.finished_at, v.created_at, v.archived_at, v.archived_at
      FROM image_versions v
      JOIN generated_images g ON (g.content_creation_request_id, g.scene_index, g.image_index) = (v.content_creation_request_id, v.scene_index, v.image_index)
      JOIN content_creation_requests p ON p.id = v.content_creation_request_id
      WHERE g.id = ${slotId}
    ) versions
    ORDER BY version DESC`;
}

async function findSlotOf(sql: Sql, scope: Scope, slotId: string) {
  return sql<{ id: string }[]>`
    SELECT g.id FROM generated_images g JOIN content_creation_requests p ON p.id = g.content_creation_request_id
    WHERE g.id = ${slotId} AND ${ownedBy(sql, scope, 'p.user_id')}`;
}

