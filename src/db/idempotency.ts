import type { Sql } from './database.ts';

export interface IdempotencyClaim {
  ownerId: string;
  key: string;
  /** Which action on which project, e.g. 'regenerate:<projectId>:<sceneIndex>'. */
  scope: string;
  /** Covers the scope and the body: equal hashes mean the same request. */
  requestHash: string;
  projectId: string;
  /** How long a key stays bound to its first request. */
  windowMs: number;
}

/**
 * 'new': the key is now this request's (the caller does the work, in the same transaction);
 * 'same': this very request was done before (the caller does nothing);
 * 'conflict': the key belongs to another request.
 */
export type ClaimOutcome = 'new' | 'same' | 'conflict';

/**
 * Binds an Idempotency-Key to a request, in the transaction of the action it guards. Taking
 * a free key, or one older than the window (replaced in place), is one statement. A
 * concurrent twin blocks on the primary key until that transaction ends: after a commit it
 * finds the key taken and reads it (a fresh snapshot under READ COMMITTED); after a
 * rollback it takes the key itself. A key POST /projects used within the window (kept on
 * the project row) is another request's too.
 */
export async function claimIdempotencyKey(sql: Sql, c: IdempotencyClaim): Promise<ClaimOutcome> {
  const window = sql`make_interval(secs => ${c.windowMs / 1000})`;
  const taken = await sql`
    INSERT INTO idempotency_keys AS k (owner_id, key, scope, request_hash, project_id)
    SELECT ${c.ownerId}, ${c.key}, ${c.scope}, ${c.requestHash}, ${c.projectId}
    WHERE NOT EXISTS (
      SELECT 1 FROM content_creation_requests
      WHERE user_id = ${c.ownerId} AND idempotency_key = ${c.key} AND created_at >= now() - ${window})
    ON CONFLICT (owner_id, key) DO UPDATE
      SET scope = excluded.scope, request_hash = excluded.request_hash, project_id = excluded.project_id, created_at = now()
      WHERE k.created_at < now() - ${window}
    RETURNING 1`;
  if (taken.length > 0) return 'new';
  const [first] = await sql<{ requestHash: string }[]>`
    SELECT request_hash FROM idempotency_keys
    WHERE owner_id = ${c.ownerId} AND key = ${c.key} AND created_at >= now() - ${window}`;
  // No live row here: the key is a live POST /projects key.
  return first?.requestHash === c.requestHash ? 'same' : 'conflict';
}

/** Deletes up to `limit` keys older than the window, oldest first; returns how many. */
export async function purgeExpiredIdempotencyKeys(sql: Sql, windowMs: number, limit = 10_000): Promise<number> {
  const result = await sql`
    DELETE FROM idempotency_keys
    WHERE (owner_id, key) IN (
      SELECT owner_id, key FROM idempotency_keys
      WHERE created_at < now() - make_interval(secs => ${windowMs / 1000})
      ORDER BY created_at
      LIMIT ${limit})`;
  return result.count;
}

/** Whether an action (generate, regenerate) holds this key within the window: POST /projects must not reuse it. */
export async function isActionKeyLive(sql: Sql, ownerId: string, key: string, windowMs: number): Promise<boolean> {
  const rows = await sql`
    SELECT 1 FROM idempotency_keys
    WHERE owner_id = ${ownerId} AND key = ${key} AND created_at >= now() - make_interval(secs => ${windowMs / 1000})`;
  return rows.length > 0;
}
