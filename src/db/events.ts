import type { Pool, Sql } from './database.ts';
import { SCENE_IMAGE_COLUMNS, toSceneImage, type ImageRow, type StoredSceneImage } from './images.ts';
import { ownedBy, type Scope } from './scope.ts';

/**
 * The channel on which the triggers of generated_images (migration 1763942400000_image-notify)
 * name, once per statement, each project whose images changed. The payload is the project id.
 */
export const IMAGES_CHANNEL = 'sceneworks_images';

/**
 * LISTENs for changed projects on postgres.js's one listening connection (shared with every
 * other channel of this pool). `onListen` runs each time the LISTEN is in place: at first, and
 * again after the connection was lost and re-established, when notifications may have been
 * missed. Resolves with the function that stops listening.
 */
export async function listenForImageChanges(
  sql: Pool,
  onProject: (projectId: string) => void,
  onListen: () => void,
): Promise<() => Promise<void>> {
  const { unlisten } = await sql.listen(IMAGES_CHANNEL, onProject, onListen);
  return async () => void (await unlisten());
}

/** Whether the project exists and is in scope (the same rule as GET /projects/:id). */
export async function isProjectInScope(sql: Sql, scope: Scope, id: string): Promise<boolean> {
  const rows = await sql`SELECT 1 FROM content_creation_requests WHERE id = ${id} AND ${ownedBy(sql, scope)}`;
  return rows.length > 0;
}

/**
 * What identifies a change of an image row, cheaply: its id and its xmin (the transaction
 * that last wrote it). Every write of a row, whichever columns it sets, gives the row a new
 * xmin, so a row whose xmin is the one last read has not changed since. The converse does not
 * hold (a lease heartbeat or a favorite writes the row without changing what a client sees):
 * a new xmin only says which rows to read again, and the rows read decide.
 */
export interface ImageRowVersion {
  id: string;
  rowVersion: string;
}

/** The id and row version of every image of a project: 2 narrow columns, whatever its size. */
export async function listImageRowVersions(sql: Sql, projectId: string): Promise<ImageRowVersion[]> {
  return sql<ImageRowVersion[]>`
    SELECT id, xmin::text AS row_version FROM generated_images WHERE content_creation_request_id = ${projectId}`;
}

/** An image as listProjectImages reads it, with the row version it was read at. */
export interface WatchedImage {
  rowVersion: string;
  image: StoredSceneImage;
}

/**
 * Images of a project exactly as listProjectImages (src/db/images.ts) reads them, plus their
 * row versions: all of them, or (with `ids`) only those, in one query; an id that is no
 * longer the project's is left out. In slot order.
 */
export async function listWatchedImages(sql: Sql, projectId: string, ids?: readonly string[]): Promise<WatchedImage[]> {
  const rows = await sql<(ImageRow & { rowVersion: string })[]>`
    SELECT xmin::text AS row_version, ${sql.unsafe(SCENE_IMAGE_COLUMNS)}
    FROM generated_images
    WHERE content_creation_request_id = ${projectId} ${ids ? sql`AND id = ANY(${ids as string[]}::uuid[])` : sql``}
    ORDER BY scene_index, image_index`;
  return rows.map((r) => ({ rowVersion: r.rowVersion, image: toSceneImage(r) }));
}
