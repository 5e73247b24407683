import type { Sql } from './database.ts';
import { ownedBy, projectsInScope, type Scope } from './scope.ts';
import type { WebhookTarget } from './webhooks.ts';

export interface ProjectRow {
  id: string;
  userId: string;
  title: string | null;
  generatedOutput: unknown;
  settings: Record<string, unknown> | null;
  metadata: unknown;
  idempotencyKey: string | null;
  requestHash: string | null;
  /** PostgreSQL text, UTC (see toIso). */
  createdAt: string;
  updatedAt: string;
}

export interface NewProject {
  id: string;
  ownerId: string;
  title: string | null;
  generatedOutput: unknown;
  settings: Record<string, unknown>;
  metadata: unknown;
  /** {url, events}: told of this project's events (webhook_events). */
  webhook?: WebhookTarget | null | undefined;
  idempotencyKey: string | null;
  requestHash: string | null;
}

const PROJECT_COLUMNS = ['id', 'user_id', 'title', 'generated_output', 'settings', 'metadata', 'idempotency_key', 'request_hash', 'created_at', 'updated_at'];

/** Inserts a project; returns undefined when (owner, idempotency key) already exists. */
export async function insertProject(sql: Sql, p: NewProject): Promise<ProjectRow | undefined> {
  const rows = await sql<ProjectRow[]>`
    INSERT INTO content_creation_requests (id, user_id, title, generated_output, settings, metadata, webhook, idempotency_key, request_hash)
    VALUES (${p.id}, ${p.ownerId}, ${p.title}, ${sql.json(p.generatedOutput as never)}, ${sql.json(p.settings as never)},
            ${p.metadata === null ? null : sql.json(p.metadata as never)}, ${p.webhook ? sql.json(p.webhook as never) : null},
            ${p.idempotencyKey}, ${p.requestHash})
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING ${sql(PROJECT_COLUMNS)}`;
  return rows[0];
}

export async function findProject(sql: Sql, scope: Scope, id: string): Promise<ProjectRow | undefined> {
  const rows = await sql<ProjectRow[]>`
    SELECT ${sql(PROJECT_COLUMNS)} FROM content_creation_requests WHERE id = ${id} AND ${ownedBy(sql, scope)}`;
  return rows[0];
}

/** Locks the project row for the rest of the transaction (serialises regenerates of one project). */
export async function lockProject(sql: Sql, scope: Scope, id: string): Promise<ProjectRow | undefined> {
  const rows = await sql<ProjectRow[]>`
    SELECT ${sql(PROJECT_COLUMNS)} FROM content_creation_requests WHERE id = ${id} AND ${ownedBy(sql, scope)} FOR UPDATE`;
  return rows[0];
}

export async function findProjectByIdempotencyKey(sql: Sql, ownerId: string, key: string): Promise<ProjectRow | undefined> {
  const rows = await sql<ProjectRow[]>`
    SELECT ${sql(PROJECT_COLUMNS)} FROM content_creation_requests WHERE user_id = ${ownerId} AND idempotency_key = ${key}`;
  return rows[0];
}

/** Frees a key older than the idempotency window, so the owner may use it again. */
export async function releaseExpiredIdempotencyKey(sql: Sql, ownerId: string, key: string, windowMs: number): Promise<void> {
  await sql`
    UPDATE content_creation_requests SET idempotency_key = NULL
    WHERE user_id = ${ownerId} AND idempotency_key = ${key} AND created_at < now() - make_interval(secs => ${windowMs / 1000})`;
}

/**
 * Replaces one scene's prompt inside generated_output in place. jsonb_set runs on the row
 * as it is when locked, so concurrent edits of other scenes are never overwritten.
 */
export async function setScenePrompt(sql: Sql, projectId: string, position: number, prompt: string): Promise<void> {
  await sql`
    UPDATE content_creation_requests
    SET generated_output = jsonb_set(generated_output, ${['scenes', String(position), 'prompt']}::text[], to_jsonb(${prompt}::text)),
        updated_at = now()
    WHERE id = ${projectId}`;
}

/** Replaces one scene (by position) inside generated_output, under the project's row lock. */
export async function replaceScene(sql: Sql, projectId: string, position: number, scene: unknown): Promise<void> {
  await sql`
    UPDATE content_creation_requests
    SET generated_output = jsonb_set(generated_output, ${['scenes', String(position)]}::text[], ${sql.json(scene as never)}),
        updated_at = now()
    WHERE id = ${projectId}`;
}

/**
 * Removes the legacy `imageUrls` of the given scene positions from each project's stored
 * JSON, in one statement for many projects, once rows hold those images. Each project's
 * JSON is rebuilt from its current value under the row lock, so no concurrent edit is lost.
 */
export async function removeLegacyImageUrls(sql: Sql, items: readonly { projectId: string; positions: readonly number[] }[]): Promise<number> {
  if (items.length === 0) return 0;
  const result = await sql`
    UPDATE content_creation_requests p
    SET generated_output = jsonb_set(p.generated_output, '{scenes}', (
          SELECT coalesce(jsonb_agg(CASE WHEN (s.ord - 1)::int = ANY(x.positions) AND jsonb_typeof(s.elem) = 'object'
                                         THEN s.elem - 'imageUrls' ELSE s.elem END ORDER BY s.ord), '[]'::jsonb)
          FROM jsonb_array_elements(p.generated_output -> 'scenes') WITH ORDINALITY AS s(elem, ord))),
        updated_at = now()
    FROM (
      SELECT i.project_id, array_agg(i.position) AS positions
      FROM unnest(${items.flatMap((i) => i.positions.map(() => i.projectId))}::uuid[],
                  ${items.flatMap((i) => [...i.positions])}::int[]) AS i(project_id, position)
      GROUP BY i.project_id
    ) x
    WHERE p.id = x.project_id AND jsonb_typeof(p.generated_output -> 'scenes') = 'array'`;
  return result.count;
}

export async function touchProject(sql: Sql, projectId: string): Promise<void> {
  await sql`UPDATE content_creation_requests SET updated_at = now() WHERE id = ${projectId}`;
}

export interface ProjectSummaryRow {
  id: string;
  title: string | null;
  createdAt: string;
  updatedAt: string;
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
}

export interface ListProjectsQuery {
  scope: Scope;
  limit: number;
  after: { createdAt: string; id: string } | null;
  status: string | null;
}

/**
 * One page of the scope's projects, newest first, with per-status slot counts: read from the
 * project rows, where the slot-counting triggers keep them (migration 1764979200000), so a
 * page costs the same whatever the projects hold. Keyset pagination on (created_at, id) so
 * page N costs the same as page 1; a status filter is a range of the (owner, status,
 * created_at, id) index, never a scan of the projects it skips.
 */
export async function listProjectSummaries(sql: Sql, q: ListProjectsQuery): Promise<ProjectSummaryRow[]> {
  await foldSlotChanges(sql, { onlyIfPending: true });
  return sql<ProjectSummaryRow[]>`
    SELECT p.id, p.title, p.created_at, p.updated_at, p.slots_total AS total, p.slots_queued AS queued,
           p.slots_running AS running, p.slots_succeeded AS succeeded, p.slots_failed AS failed
    FROM ${projectsInScope(sql, q.scope, q.after, q.status, q.limit)} p
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT ${q.limit}`;
}

/** Changes folded per call at most: a fold is one transaction, kept short. */
const FOLD_BATCH = 50_000;

/**
 * Adds the slot changes appended since the last fold to their project rows' counts, status
 * and images_version (migration 1765411200000: writers of slots append, never lock the
 * project). The runner folds every few hundred milliseconds; a listing folds first, so the
 * status it filters on and the counts it shows include every change committed before it.
 * `onlyIfPending`: skip the fold (and its lock) when nothing is pending, as seen by this
 * statement: a fold in progress elsewhere still shows its changes as pending, so the caller
 * waits for it and then sees its result. Returns how many changes were folded.
 */
export async function foldSlotChanges(sql: Sql, o: { onlyIfPending?: boolean } = {}): Promise<number> {
  const rows = await sql<{ folded: number }[]>`
    SELECT sceneworks_fold_slot_changes(${FOLD_BATCH}) AS folded
    ${o.onlyIfPending ? sql`WHERE EXISTS (SELECT 1 FROM project_slot_changes)` : sql``}`;
  return rows[0]?.folded ?? 0;
}

/**
 * A version of everything GET /projects/:id shows, from the project row and its pending slot
 * changes: the row's xmin changes with every committed change of the row (a fold included),
 * and each change of a slot a client can see appends a change row (the newest one's id is
 * part of the version until a fold adds it to images_version). Two index lookups whatever the
 * project's size. Undefined when the project does not exist for this owner.
 */
export async function findProjectVersion(sql: Sql, scope: Scope, id: string): Promise<string | undefined> {
  const rows = await sql<{ version: string }[]>`
    SELECT p.xmin::text || ':' || p.images_version || ':'
           || coalesce((SELECT max(c.id) FROM project_slot_changes c WHERE c.project_id = p.id), 0) AS version
    FROM content_creation_requests p WHERE p.id = ${id} AND ${ownedBy(sql, scope, 'p.user_id')}`;
  return rows[0]?.version;
}

/** What a project's images cost: see GET /projects/{id}/cost. Undefined when not in scope. */
export interface ProjectCost {
  /** Images with a file: the current ones and their kept versions. */
  images: number;
  /** Of those, the ones whose price is unknown. */
  unpriced: number;
  /** The sum of the known prices, as text (numeric). */
  knownUsd: string;
}

export async function projectCost(sql: Sql, scope: Scope, id: string): Promise<ProjectCost | undefined> {
  const rows = await sql<ProjectCost[]>`
    SELECT (g.images + v.images)::int AS images, (g.images + v.images - g.priced - v.priced)::int AS unpriced,
           (coalesce(g.usd, 0) + coalesce(v.usd, 0))::text AS known_usd
    FROM content_creation_requests p
    CROSS JOIN LATERAL (
      SELECT count(*) AS images, count(cost_usd) AS priced, sum(cost_usd) AS usd FROM generated_images
      WHERE content_creation_request_id = p.id AND (image_url IS NOT NULL OR storage_key IS NOT NULL)) g
    CROSS JOIN LATERAL (
      SELECT count(*) AS images, count(cost_usd) AS priced, sum(cost_usd) AS usd FROM image_versions
      WHERE content_creation_request_id = p.id) v
    WHERE p.id = ${id} AND ${ownedBy(sql, scope, 'p.user_id')}`;
  return rows[0];
}
