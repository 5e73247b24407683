import type { PendingQuery, Row } from 'postgres';
import type { ImageStatus } from '../projects/progress.ts';
import type { Pool, Sql } from './database.ts';
import { slotRecordColumns, type ImageRecordRow } from './image-records.ts';
import { ownedBy, type Scope } from './scope.ts';

export interface GalleryQuery {
  limit: number;
  /** Keyset position: the page starts strictly after this (gallery_at, id), in gallery order. */
  before: { galleryAt: string; id: string } | null;
  projectId?: string | undefined;
  /** Default 'succeeded'. */
  status?: ImageStatus | undefined;
  favorite?: boolean | undefined;
  provider?: string | undefined;
  /** gallery_at >= createdAfter and < createdBefore (half-open: adjacent windows never overlap). ISO-8601. */
  createdAfter?: string | undefined;
  createdBefore?: string | undefined;
  /** websearch_to_tsquery syntax; the last word is a prefix unless followed by a space or a quote. */
  search?: string | undefined;
}

/**
 * The words of an image's prompt, full prompt and revised prompt, stored with the row and
 * GIN-indexed (migration 1765238400000_stored-search-vector.sql; 'simple': words as written).
 */
const SEARCHED = 'g.search_vector';

/** A search box is typed into: a last word that ends the text (no space or quote after it) may be unfinished. */
const UNFINISHED_WORD = /[\p{L}\p{N}_]$/u;

/**
 * One page of the scope's images (the current image of each slot, generated_images), newest
 * first: ORDER BY gallery_at DESC, id DESC, keyset on (gallery_at, id), so page N costs what
 * page 1 costs. Every filter combination is an index range scan in that order (see the
 * gallery migrations), or, for a search, whichever of the GIN index and an ordered scan the
 * planner estimates cheaper for the words searched.
 *
 * A search runs in a transaction of two statements: the tsquery is built by PostgreSQL from
 * the user's text (never spliced into SQL), then passed as a value; and the page is planned
 * with that value (plan_cache_mode force_custom_plan): a generic plan, made once for any
 * words, would pick one strategy for both a word in every other prompt (an ordered scan finds
 * a page at once) and a word in none (the same scan would read all of an owner's rows).
 */
export async function listGallery(sql: Pool, scope: Scope, q: GalleryQuery): Promise<ImageRecordRow[]> {
  const search = q.search?.trim() ? q.search : undefined;
  if (search === undefined) return selectPage(sql, scope, q, null);
  return sql.begin(async (tx) => {
    const [built] = await tx<{ query: string; nodes: number }[]>`
      SELECT set_config('plan_cache_mode', 'force_custom_plan', true) AS plan_cache_mode,
             -- A bitmap of a common word's rows (620,000 of 10 M for "watercolor") turns lossy
             -- at the default 4 MB, and then every row of its pages is read and re-checked
             -- (2.5 s for "watercolor harbor" at 10 M images before the stored vector, 0.5 s exact).
             set_config('work_mem', '32MB', true) AS work_mem,
             -- tsquery's own text form quotes every lexeme: ':*' after the closing quote of the
             -- last one marks it a prefix, and can mark nothing else.
             (CASE WHEN ${UNFINISHED_WORD.test(search)} AND w::text LIKE '%''' THEN (w::text || ':*')::tsquery ELSE w END)::text AS query,
             numnode(w) AS nodes
      FROM websearch_to_tsquery('simple', ${search}) AS w`;
    // Nothing searchable (punctuation, a lone quote or '-'): nothing matches.
    if (!built || built.nodes === 0) return [];
    return selectPage(tx, scope, q, built.query);
  });
}

function selectPage(sql: Sql, scope: Scope, q: GalleryQuery, tsquery: string | null): Promise<ImageRecordRow[]> {
  const filters = sql`
    g.status = ${q.status ?? 'succeeded'}
    ${q.before ? sql`AND (g.gallery_at, g.id) < (${q.before.galleryAt}::timestamptz, ${q.before.id}::uuid)` : sql``}
    ${q.projectId !== undefined ? sql`AND g.content_creation_request_id = ${q.projectId}::uuid` : sql``}
    ${q.favorite === undefined ? sql`` : q.favorite ? sql`AND g.favorite` : sql`AND NOT g.favorite`}
    ${q.provider !== undefined ? sql`AND g.provider = ${q.provider}` : sql``}
    ${q.createdAfter !== undefined ? sql`AND g.gallery_at >= ${q.createdAfter}::timestamptz` : sql``}
    ${q.createdBefore !== undefined ? sql`AND g.gallery_at < ${q.createdBefore}::timestamptz` : sql``}
    ${tsquery !== null ? sql`AND ${sql.unsafe(SEARCHED)} @@ ${tsquery}::tsquery` : sql``}`;
  // The page is chosen from generated_images alone, then joined with its projects: 21 lookups.
  return sql<ImageRecordRow[]>`
    SELECT ${slotRecordColumns(sql)}
    FROM ${pageInScope(sql, scope, filters, q.limit)} g
    JOIN content_creation_requests p ON p.id = g.content_creation_request_id
    ORDER BY g.gallery_at DESC, g.id DESC`;
}

/**
 * The first `limit` of the scope's images matching `filters`, in gallery order, as a FROM
 * item: the rule of ownedBy(), on generated_images.owner_id. One owner's with unowned
 * (legacy) images is two ordered scans, owner_id = X and owner_id IS NULL, each stopped at
 * `limit` and merged (a Merge Append of two Limits), never an OR that reads both sets whole
 * and sorts them. Each arm carries its own ORDER BY and LIMIT: PostgreSQL 18 does not push an
 * outer ORDER BY ... LIMIT into the arms of a UNION ALL (it appends and sorts everything).
 * The IS NULL arm orders by owner_id too: IS NULL is no equality, so only the index's own
 * order (owner_id first) tells the planner that the scan is already in gallery order.
 */
function pageInScope(sql: Sql, scope: Scope, filters: PendingQuery<Row[]>, limit: number) {
  const newestFirst = sql`ORDER BY g.gallery_at DESC, g.id DESC LIMIT ${limit}`;
  if (scope.ownerId === null) {
    return sql`(SELECT * FROM generated_images g WHERE ${ownedBy(sql, scope, 'g.owner_id')} AND ${filters} ${newestFirst})`;
  }
  const owned = sql`SELECT * FROM generated_images g WHERE g.owner_id = ${scope.ownerId}::uuid AND ${filters} ${newestFirst}`;
  if (!scope.unowned) return sql`(${owned})`;
  return sql`(
    SELECT * FROM (
      (${owned})
      UNION ALL
      (SELECT * FROM generated_images g WHERE g.owner_id IS NULL AND ${filters} ORDER BY g.owner_id, g.gallery_at DESC, g.id DESC LIMIT ${limit})
    ) g
    ${newestFirst}
  )`;
}

/** Marks a slot's image favorite (or not), when the image is in scope (the rule of listGallery). */
export async function setImageFavorite(pool: Pool, scope: Scope, id: string, favorite: boolean): Promise<ImageRecordRow | undefined> {
  const rows = await pool<ImageRecordRow[]>`
    UPDATE generated_images g SET favorite = ${favorite}
    FROM content_creation_requests p
    WHERE g.id = ${id}::uuid AND p.id = g.content_creation_request_id AND ${ownedBy(pool, scope, 'g.owner_id')}
    RETURNING ${slotRecordColumns(pool)}`;
  return rows[0];
}
