import type { Sql } from './database.ts';

/**
 * Serialises, per owner, the transactions that add pending slots (create, generate,
 * regenerate), so two concurrent requests cannot both pass the quota. Held until commit.
 */
export async function lockOwnerQueue(sql: Sql, ownerId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended(${`sceneworks:pending:${ownerId}`}, 0))`;
}

export interface OwnerPending {
  /** The owner's queued + running slots. */
  slots: number;
  /** The owner's projects with at least one queued slot. */
  waitingProjects: number;
}

/** From the partial index over pending slots: bounded by the owner's pending slots, not its history. */
export async function pendingOfOwner(sql: Sql, ownerId: string): Promise<OwnerPending> {
  const [row] = await sql<OwnerPending[]>`
    SELECT count(*)::int AS slots,
           count(DISTINCT content_creation_request_id) FILTER (WHERE status = 'queued')::int AS waiting_projects
    FROM generated_images WHERE owner_id = ${ownerId} AND status IN ('queued', 'running')`;
  return row ?? { slots: 0, waitingProjects: 0 };
}
