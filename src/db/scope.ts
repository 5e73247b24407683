import type { Sql } from './database.ts';

/**
 * Whose projects a request may see and act on. Every query that reads or changes a project
 * on a caller's behalf filters through ownedBy(): ownership is decided here, once, never
 * remembered per handler.
 */
export interface Scope {
  /** The owner that new projects and idempotency keys are filed under. */
  ownerId: string;
  /** Projects with no owner (adopted legacy rows) are visible too: single-owner mode. */
  unowned: boolean;
}

/** The SQL condition "this project is in scope", on a user_id column (qualified if needed, e.g. 'p.user_id'). */
export function ownedBy(sql: Sql, scope: Scope, column = 'user_id') {
  const owner = sql(column);
  return scope.unowned ? sql`(${owner} = ${scope.ownerId} OR ${owner} IS NULL)` : sql`${owner} = ${scope.ownerId}`;
}

/**
 * The scope's projects (id, title, created_at, updated_at) before a keyset position, as a FROM
 * item. The same rule as ownedBy(), written so that ORDER BY created_at DESC, id DESC LIMIT n
 * streams from the (user_id, created_at, id) index: unowned projects are a second ordered
 * scan merged with the first (a MergeAppend), never an OR that reads and sorts them all.
 */
export function projectsInScope(sql: Sql, scope: Scope, before: { createdAt: string; id: string } | null) {
  const keyset = before ? sql`AND (created_at, id) < (${before.createdAt}::timestamptz, ${before.id}::uuid)` : sql``;
  const owned = sql`SELECT id, title, created_at, updated_at FROM content_creation_requests WHERE user_id = ${scope.ownerId} ${keyset}`;
  if (!scope.unowned) return sql`(${owned})`;
  return sql`(${owned} UNION ALL SELECT id, title, created_at, updated_at FROM content_creation_requests WHERE user_id IS NULL ${keyset})`;
}
