import type { Sql } from './database.ts';

/**
 * The lock order every transaction that changes slots keeps: its projects first, in id order,
 * then their slots. The slot-counting triggers (migration 1764979200000) lock a changed slot's
 * project at the end of each statement; a statement that locked slots first and then waited
 * there for a project held by a transaction waiting for one of those slots would deadlock.
 * Taking the projects first makes that wait impossible: whoever holds a project's lock holds
 * it before touching any of its slots.
 */
export async function lockProjects(sql: Sql, projectIds: readonly string[]): Promise<void> {
  if (projectIds.length === 0) return;
  await sql`
    SELECT 1 FROM content_creation_requests
    WHERE id = ANY(${[...new Set(projectIds)]}::uuid[])
    ORDER BY id FOR NO KEY UPDATE`;
}

/** lockProjects for the projects these slots belong to (a slot never moves to another project). */
export async function lockProjectsOfSlots(sql: Sql, slotIds: readonly string[]): Promise<void> {
  if (slotIds.length === 0) return;
  await sql`
    SELECT 1 FROM content_creation_requests
    WHERE id IN (SELECT content_creation_request_id FROM generated_images WHERE id = ANY(${[...new Set(slotIds)]}::uuid[]))
    ORDER BY id FOR NO KEY UPDATE`;
}
