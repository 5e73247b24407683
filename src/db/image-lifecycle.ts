import type { Sql } from './database.ts';
import { ownedBy, type Scope } from './scope.ts';
import { insertProjectDeletedEvent } from './webhooks.ts';

/** The columns of an image a slot row or a version row carries alike. */
const IMAGE_FIELDS = `image_url, storage_key, full_prompt, revised_prompt, provider, model, seed, width, height, aspect_ratio,
  mime_type, bytes, sha256, provider_request_id, cost_usd, favorite, queued_at, started_at, finished_at`;

/**
 * Makes a kept version the slot's current image, atomically: the current image becomes a
 * version, the chosen one leaves the versions. The generation is bumped, so a claim still
 * running for this slot (a regenerate in progress) can never commit over it: restoring
 * cancels it. False when the slot or the version is not there (or not in scope).
 */
export async function restoreVersion(sql: Sql, scope: Scope, slotId: string, version: number): Promise<boolean> {
  const rows = await sql`
    WITH slot AS (
      SELECT g.* FROM generated_images g JOIN content_creation_requests p ON p.id = g.content_creation_request_id
      WHERE g.id = ${slotId} AND ${ownedBy(sql, scope, 'p.user_id')}
      FOR UPDATE OF g
    ), chosen AS (
      DELETE FROM image_versions v USING slot s
      WHERE (v.content_creation_request_id, v.scene_index, v.image_index) = (s.content_creation_request_id, s.scene_index, s.image_index)
        AND v.version = ${version}
      RETURNING v.*
    ), kept AS (
      INSERT INTO image_versions (content_creation_request_id, scene_index, image_index, version, owner_id, prompt, attempts, details,
                                  created_at, ${sql.unsafe(IMAGE_FIELDS)})
      SELECT s.content_creation_request_id, s.scene_index, s.image_index, s.version, s.owner_id, coalesce(s.image_prompt, s.prompt),
             s.attempts, s.details, coalesce(s.finished_at, s.updated_at, s.created_at, now()), ${sql.unsafe(prefixed('s'))}
      FROM slot s, chosen
      WHERE s.image_url IS NOT NULL OR s.storage_key IS NOT NULL
      ON CONFLICT (content_creation_request_id, scene_index, image_index, version) DO NOTHING
    )
    UPDATE generated_images g
    SET ${sql.unsafe(assignments('c'))},
        image_prompt = c.prompt, version = c.version, attempts = c.attempts, status = 'succeeded', error = NULL,
        generation = g.generation + 1, locked_by = NULL, locked_until = NULL, gallery_at = now(), updated_at = now()
    FROM chosen c
    WHERE g.id = ${slotId}
    RETURNING g.id`;
  return rows.length > 0;
}

/**
 * Empties a slot: its image and every kept version go, and it stays in its scene with no
 * image (status failed, error "deleted", details.errorCode "deleted") until generate refills
 * it. The slot gets a new id: the deleted image's id names nothing any more, and a claim still
 * running for the slot can never commit into it. Returns the stored keys to remove (after
 * commit); undefined when there is no image there (or the slot is not in scope).
 */
export async function deleteSlotImage(sql: Sql, scope: Scope, slotId: string): Promise<string[] | undefined> {
  const rows = await sql<{ storageKey: string | null; which: string }[]>`
    WITH slot AS (
      SELECT g.id, g.content_creation_request_id, g.scene_index, g.image_index, g.storage_key
      FROM generated_images g JOIN content_creation_requests p ON p.id = g.content_creation_request_id
      WHERE g.id = ${slotId} AND ${ownedBy(sql, scope, 'p.user_id')} AND (g.image_url IS NOT NULL OR g.storage_key IS NOT NULL)
      FOR UPDATE OF g
    ), versions AS (
      DELETE FROM image_versions v USING slot s
      WHERE (v.content_creation_request_id, v.scene_index, v.image_index) = (s.content_creation_request_id, s.scene_index, s.image_index)
      RETURNING v.storage_key
    ), emptied AS (
      UPDATE generated_images g
      SET id = DEFAULT, status = 'failed', error = 'deleted', details = g.details || '{"errorCode": "deleted"}'::jsonb,
          image_url = NULL, storage_key = NULL, width = NULL, height = NULL, mime_type = NULL, bytes = NULL, sha256 = NULL,
          seed = NULL, revised_prompt = NULL, provider_request_id = NULL, image_prompt = NULL, cost_usd = NULL, favorite = false,
          generation = g.generation + 1, attempts = 0, locked_by = NULL, locked_until = NULL, gallery_at = now(), updated_at = now()
      FROM slot s WHERE g.id = s.id
      RETURNING s.storage_key
    )
    SELECT storage_key, 'slot' AS which FROM emptied
    UNION ALL SELECT storage_key, 'version' FROM versions`;
  if (!rows.some((r) => r.which === 'slot')) return undefined;
  return rows.flatMap((r) => (r.storageKey ? [r.storageKey] : []));
}

/**
 * Deletes a project, its slots and their kept versions (explicitly: an adopted database's own
 * foreign keys may not cascade). Returns every stored key they referenced, to remove after
 * commit; undefined when the project is not there (or not in scope).
 */
export async function deleteProjectRows(sql: Sql, scope: Scope, projectId: string): Promise<string[] | undefined> {
  const [project] = await sql`
    SELECT id FROM content_creation_requests WHERE id = ${projectId} AND ${ownedBy(sql, scope)} FOR UPDATE`;
  if (!project) return undefined;
  await insertProjectDeletedEvent(sql, projectId);
  const versions = await sql<{ storageKey: string | null }[]>`
    DELETE FROM image_versions WHERE content_creation_request_id = ${projectId} RETURNING storage_key`;
  const slots = await sql<{ storageKey: string | null }[]>`
    DELETE FROM generated_images WHERE content_creation_request_id = ${projectId} RETURNING storage_key`;
  await sql`DELETE FROM content_creation_requests WHERE id = ${projectId}`;
  return [...versions, ...slots].flatMap((r) => (r.storageKey ? [r.storageKey] : []));
}

function prefixed(alias: string): string {
  return IMAGE_FIELDS.split(',')
    .map((c) => `${alias}.${c.trim()}`)
    .join(', ');
}

function assignments(alias: string): string {
  return IMAGE_FIELDS.split(',')
    .map((c) => `${c.trim()} = ${alias}.${c.trim()}`)
    .join(', ');
}
