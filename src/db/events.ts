import type { Pool, Sql } from './database.ts';
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
