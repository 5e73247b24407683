import type { PendingQuery, Row } from 'postgres';
import type { Sql } from './database.ts';

/**
 * Whose projects a request may see and act on. Every query that reads or changes a project
 * on a caller's behalf filters through ownedBy(), scopeParts() or projectsInScope(): ownership
 * is decided here, once, never remembered per handler.
 */
export interface Scope {
  /** One owner's projects; null: every owner's (an operator not acting for a user). */
  ownerId: string | null;
  /** Projects with no owner (adopted legacy rows) are visible too: single-owner mode, operators. */
  unowned: boolean;
}

/** The namespace of idempotency keys sent by an operator acting for no one. */
export const OPERATOR_KEY_OWNER = '00000000-0000-0000-0000-000000000000';

/** Who idempotency keys of this scope are filed under. */
export function keyOwnerOf(scope: Scope): string {
  return scope.ownerId ?? OPERATOR_KEY_OWNER;
}

/** The SQL condition "this project is in scope", on a user_id column (qualified if needed, e.g. 'p.user_id'). */
export function ownedBy(sql: Sql, scope: Scope, column = 'user_id') {
  const owner = sql(column);
  if (scope.ownerId === null) return scope.unowned ? sql`true` : sql`${owner} IS NOT NULL`;
  return scope.unowned ? sql`(${owner} = ${scope.ownerId} OR ${owner} IS NULL)` : sql`${owner} = ${scope.ownerId}`;
}

/**
 * The same rule as ownedBy(), as parts that an index can each stream on its own, for queries
 * that take a page from every part and merge them (a UNION ALL of ordered, limited scans)
 * instead of reading an OR whole: one owner's (column = X) and, when unowned projects are in
 * scope, the unowned ones (column IS NULL, `unowned: true`); everyone's, as one part, for an
 * operator acting for no one.
 */
export function scopeParts(sql: Sql, scope: Scope, column: string): { where: PendingQuery<Row[]>; unowned: boolean }[] {
  if (scope.ownerId === null) return [{ where: ownedBy(sql, scope, column), unowned: false }];
  const owner = sql(column);
  const owned = { where: sql`${owner} = ${scope.ownerId}::uuid`, unowned: false };
  return scope.unowned ? [owned, { where: sql`${owner} IS NULL`, unowned: true }] : [owned];
}

/**
 * The scope's first `limit` projects before a keyset position, newest first, with a status when
 * given, as a FROM item (the caller orders and limits again). The same rule as ownedBy(),
 * written so that every part streams from an index: one owner's from (user_id, created_at, id),
 * or (user_id, status, created_at, id) with a status; with unowned projects a second part,
 * merged; everyone's from (created_at, id) or (status, created_at, id). Each part carries its
 * own ORDER BY and LIMIT: without them the planner, seeing that one owner has most rows,
 * reads all of them and sorts (measured: 100 ms for a page of 100,000 projects, 1 ms now).
 */
export function projectsInScope(sql: Sql, scope: Scope, before: { createdAt: string; id: string } | null, status: string | null, limit: number) {
  const keyset = before ? sql`AND (created_at, id) < (${before.createdAt}::timestamptz, ${before.id}::uuid)` : sql``;
  const withStatus = status === null ? sql`` : sql`AND status = ${status}`;
  const columns = sql`id, title, created_at, updated_at, slots_total, slots_queued, slots_running, slots_succeeded, slots_failed`;
  const page = sql`ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
  const [first, second] = scopeParts(sql, scope, 'user_id').map(
    (part) => sql`(SELECT ${columns} FROM content_creation_requests WHERE ${part.where} ${withStatus} ${keyset} ${page})`,
  );
  return second === undefined ? sql`${first!}` : sql`(${first!} UNION ALL ${second})`;
}
