import type { Pool } from '../db/database.ts';

export interface AssignOwnerOptions {
  ownerId: string;
  batchSize: number;
  /** Only this project. */
  projectId?: string | undefined;
  /** Count what would be assigned; write nothing. */
  dryRun: boolean;
  onBatch?: ((p: { assigned: number; total: number }) => void) | undefined;
}

export interface AssignOwnerSummary {
  dryRun: boolean;
  /** Projects with no owner when the run started. */
  unowned: number;
  assigned: number;
}

/**
 * Gives projects that have no owner (adopted legacy rows) an owner, in batches: each batch
 * is one short transaction, so the run can be stopped at any point and run again; it goes on
 * with what is still unowned. Their images become the owner's (gallery), pending slots included (quota, fairness).
 * An Idempotency-Key the owner already uses elsewhere is dropped from the adopted project
 * (a key is unique per owner), never the owner's own.
 */
export async function assignOwner(sql: Pool, o: AssignOwnerOptions): Promise<AssignOwnerSummary> {
  const only = o.projectId ? sql`AND id = ${o.projectId}` : sql``;
  const [{ unowned }] = (await sql`SELECT count(*)::int AS unowned FROM content_creation_requests WHERE user_id IS NULL ${only}`) as unknown as [
    { unowned: number },
  ];
  if (o.dryRun) return { dryRun: true, unowned, assigned: 0 };
  let assigned = 0;
  for (;;) {
    const ids = await sql.begin(async (tx) => {
      const rows = await tx<{ id: string }[]>`
        WITH batch AS (
          SELECT id FROM content_creation_requests WHERE user_id IS NULL ${only}
          LIMIT ${o.batchSize} FOR UPDATE SKIP LOCKED
        )
        UPDATE content_creation_requests c
        SET user_id = ${o.ownerId}, updated_at = now(),
            idempotency_key = CASE WHEN EXISTS (
              SELECT 1 FROM content_creation_requests mine WHERE mine.user_id = ${o.ownerId} AND mine.idempotency_key = c.idempotency_key
            ) THEN NULL ELSE c.idempotency_key END
        FROM batch WHERE c.id = batch.id
        RETURNING c.id`;
      const batch = rows.map((r) => r.id);
      if (batch.length > 0) {
        await tx`UPDATE generated_images SET owner_id = ${o.ownerId} WHERE content_creation_request_id = ANY(${batch}::uuid[])`;
        await tx`UPDATE image_versions SET owner_id = ${o.ownerId} WHERE content_creation_request_id = ANY(${batch}::uuid[])`;
      }
      return batch;
    });
    if (ids.length === 0) break;
    assigned += ids.length;
    o.onBatch?.({ assigned, total: unowned });
  }
  return { dryRun: false, unowned, assigned };
}
