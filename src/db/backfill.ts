import type { LegacyImage } from '../projects/legacy.ts';
import type { Sql } from './database.ts';

export interface LegacyProjectRow {
  id: string;
  generatedOutput: unknown;
}

/**
 * The next batch of projects after `after` in id order (keyset: every batch costs the same
 * wherever it is). With `lock`, the rows stay locked for the rest of the transaction, so
 * their JSON cannot change between reading it and pruning it.
 */
export async function readProjectBatch(
  sql: Sql,
  q: { after: string | null; limit: number; projectId?: string | undefined; lock: boolean },
): Promise<LegacyProjectRow[]> {
  return sql<LegacyProjectRow[]>`
    SELECT id, generated_output FROM content_creation_requests
    WHERE true
      ${q.after ? sql`AND id > ${q.after}::uuid` : sql``}
      ${q.projectId ? sql`AND id = ${q.projectId}::uuid` : sql``}
    ORDER BY id
    LIMIT ${q.limit}
    ${q.lock ? sql`FOR UPDATE` : sql``}`;
}

export async function countProjects(sql: Sql, projectId?: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM content_creation_requests ${projectId ? sql`WHERE id = ${projectId}::uuid` : sql``}`;
  return row?.n ?? 0;
}

export type BackfillImage = LegacyImage & { projectId: string };

/**
 * Inserts legacy images as succeeded rows marked as coming from the legacy data, in one
 * statement for the whole batch. Rows that exist are never touched: new images win.
 * Returns how many were inserted.
 */
export async function insertBackfillImages(sql: Sql, images: readonly BackfillImage[]): Promise<number> {
  if (images.length === 0) return 0;
  const result = await sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url, details, owner_id)
    SELECT i.project_id, i.scene_index, i.image_index, 'succeeded', i.url, '{"source": "legacy"}'::jsonb, p.user_id
    FROM unnest(${images.map((i) => i.projectId)}::uuid[], ${images.map((i) => i.sceneIndex)}::int[],
                ${images.map((i) => i.imageIndex)}::int[], ${images.map((i) => i.url)}::text[])
      AS i(project_id, scene_index, image_index, url)
      JOIN content_creation_requests p ON p.id = i.project_id
    ON CONFLICT (content_creation_request_id, scene_index, image_index) DO NOTHING`;
  return result.count;
}

/** How many of these slots already have a row (for --dry-run), in one statement. */
export async function countExistingSlots(sql: Sql, images: readonly BackfillImage[]): Promise<number> {
  if (images.length === 0) return 0;
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n
    FROM unnest(${images.map((i) => i.projectId)}::uuid[], ${images.map((i) => i.sceneIndex)}::int[], ${images.map((i) => i.imageIndex)}::int[])
      AS i(project_id, scene_index, image_index)
    JOIN generated_images g ON g.content_creation_request_id = i.project_id AND g.scene_index = i.scene_index AND g.image_index = i.image_index`;
  return row?.n ?? 0;
}

/** The occupied slots of these projects: "projectId:sceneIndex" → image indices. */
export async function slotsOfProjects(sql: Sql, projectIds: readonly string[]): Promise<Map<string, Set<number>>> {
  const slots = new Map<string, Set<number>>();
  if (projectIds.length === 0) return slots;
  const rows = await sql<{ projectId: string; sceneIndex: number; imageIndex: number }[]>`
    SELECT content_creation_request_id AS project_id, scene_index, image_index FROM generated_images
    WHERE content_creation_request_id = ANY(${projectIds}::uuid[])`;
  for (const r of rows) {
    const key = `${r.projectId}:${r.sceneIndex}`;
    const set = slots.get(key) ?? new Set<number>();
    set.add(r.imageIndex);
    slots.set(key, set);
  }
  return slots;
}
