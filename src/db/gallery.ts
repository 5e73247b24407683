import type { PendingQuery, Row } from 'postgres';
import type { ImageStatus } from '../projects/progress.ts';
import type { Pool, Sql } from './database.ts';
import { slotRecordColumns, type ImageRecordRow } from './image-records.ts';
import { ownedBy, scopeParts, type Scope } from './scope.ts';

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

/** A search box is typed into: a last word that ends the text (no space or quote after it) may be unfinished. */
const UNFINISHED_WORD = /[\p{L}\p{N}_]$/u;

/**
 * One page of the scope's images (the current image of each slot, generated_images), newest
 * first: ORDER BY gallery_at DESC, id DESC, keyset on (gallery_at, id), so page N costs what
 * page 1 costs. Every filter combination is an index range scan in that order (see the
 * gallery migrations); a project's page reads that project's rows only (projectRows).
 *
 * A search runs in a transaction: the tsquery is built by PostgreSQL from the user's text
 * (never spliced into SQL), then passed as a value, and the page is found by searchPage().
 */
export async function listGallery(sql: Pool, scope: Scope, q: GalleryQuery, scans: SearchScans = SEARCH_SCANS): Promise<ImageRecordRow[]> {
  const search = q.search?.trim() ? q.search : undefined;
  if (search === undefined) return selectPage(sql, pageInScope(sql, scope, q));
  return sql.begin(async (tx) => {
    const [built] = await tx<{ query: string; nodes: number }[]>`
      SELECT set_config('plan_cache_mode', 'force_custom_plan', true) AS plan_cache_mode,
             -- A bitmap of a common word's rows turns lossy at the default 4 MB, and then every
             -- row of its pages is read and re-checked.
             set_config('work_mem', '32MB', true) AS work_mem,
             -- tsquery's own text form quotes every lexeme: ':*' after the closing quote of the
             -- last one marks it a prefix, and can mark nothing else.
             (CASE WHEN ${UNFINISHED_WORD.test(search)} AND w::text LIKE '%''' THEN (w::text || ':*')::tsquery ELSE w END)::text AS query,
             numnode(w) AS nodes
      FROM websearch_to_tsquery('simple', ${search}) AS w`;
    // Nothing searchable (punctuation, a lone quote or '-'): nothing matches.
    if (!built || built.nodes === 0) return [];
    const ids = await searchPage(tx, scope, q, built.query, scans);
    if (ids.length === 0) return [];
    return selectPage(tx, tx`(SELECT * FROM generated_images g WHERE g.id = ANY(${ids}::uuid[]) ORDER BY g.gallery_at DESC, g.id DESC LIMIT ${q.limit})`);
  });
}

/** A search's first ordered scan reads `first` of an arm's newest rows; later ones more, up to `most` (searchPage). */
export interface SearchScans {
  first: number;
  most: number;
}
export const SEARCH_SCANS: SearchScans = { first: 2_000, most: 64_000 };

/**
 * The ids of each arm's first `q.limit` matches of a search (the caller merges the arms),
 * found by what the words turn out to be, never by the planner's estimate of them (a prefix
 * like 'vanethu':* is estimated at 35,000 rows of 10 M and matches 3: trusting that, an
 * ordered scan read all of an owner's million rows, 1.5 s):
 *
 * 1. Ordered scans: the arm's newest N rows (its ordered index, every other filter), each
 *    checked against the words, N = 2,000 first. A common word fills the page from the first
 *    few dozen rows. When a scan finds h < limit matches in N rows, the words match about h/N
 *    of the rows, and the next scan reads what that predicts a page needs (1.5 x limit x N / h),
 *    or 8 x N after none, while that stays within 64,000 rows.
 * 2. Otherwise the words are rare for this arm, and its search index finds all of its matches
 *    at once (a bitmap of the GIN index on (owner_id, search_vector), or the unowned rows'
 *    own; ordered scans are off for that statement), which are then few, and sorted.
 *
 * Why not the index always: its cost follows how common each word is in the whole table, not
 * how many rows match all of them: common words with a prefix ("watercolor harbo") cost 0.5 s
 * in the GIN index at 10 M images, and 8 ms as an ordered scan of 5,600 rows. Each way gives
 * the arm's exact first page.
 */
async function searchPage(sql: Sql, scope: Scope, q: GalleryQuery, tsquery: string, scans: SearchScans): Promise<string[]> {
  const hit = sql`g.search_vector @@ ${tsquery}::tsquery`;
  const ids: string[] = [];
  for (const arm of armsOf(sql, scope)) {
    const rows = sql`${rowsOf(sql, q)} g WHERE ${arm.where} AND ${filtersOf(sql, q)}`;
    let found: { id: string }[] | undefined;
    for (let scan = scans.first; scan <= scans.most; ) {
      const recent = await sql<{ id: string }[]>`
        SELECT g.id FROM (SELECT g.id, g.owner_id, g.gallery_at, g.search_vector FROM ${rows} ${arm.order} LIMIT ${scan}) g
        WHERE ${hit} ${arm.order} LIMIT ${q.limit}`;
      if (recent.length === q.limit) {
        found = recent;
        break;
      }
      const needed = recent.length === 0 ? scan * 8 : Math.ceil((1.5 * q.limit * scan) / recent.length);
      if (needed > scans.most && recent.length > 0) break;
      scan = recent.length === 0 ? needed : Math.min(scans.most, Math.max(needed, scan * 2));
    }
    if (found === undefined) {
      await sql`SELECT set_config('enable_indexscan', 'off', true), set_config('enable_seqscan', 'off', true)`;
      found = await sql<{ id: string }[]>`SELECT g.id FROM ${rows} AND ${hit} ${arm.order} LIMIT ${q.limit}`;
      await sql`SELECT set_config('enable_indexscan', 'on', true), set_config('enable_seqscan', 'on', true)`;
    }
    ids.push(...found.map((r) => r.id));
  }
  return ids;
}

/** Every filter of the page but its owners (armsOf) and its words, as one condition on g. */
function filtersOf(sql: Sql, q: GalleryQuery) {
  return sql`
    g.status = ${q.status ?? 'succeeded'}
    ${q.before ? sql`AND (g.gallery_at, g.id) < (${q.before.galleryAt}::timestamptz, ${q.before.id}::uuid)` : sql``}
    ${q.projectId !== undefined ? sql`AND g.content_creation_request_id = ${q.projectId}::uuid` : sql``}
    ${q.favorite === undefined ? sql`` : q.favorite ? sql`AND g.favorite` : sql`AND NOT g.favorite`}
    ${q.provider !== undefined ? sql`AND g.provider = ${q.provider}` : sql``}
    ${q.createdAfter !== undefined ? sql`AND g.gallery_at >= ${q.createdAfter}::timestamptz` : sql``}
    ${q.createdBefore !== undefined ? sql`AND g.gallery_at < ${q.createdBefore}::timestamptz` : sql``}`;
}

/** The page's rows (a FROM item of generated_images rows) with their projects, in gallery order: 21 lookups. */
function selectPage(sql: Sql, page: PendingQuery<Row[]>): Promise<ImageRecordRow[]> {
  return sql<ImageRecordRow[]>`
    SELECT ${slotRecordColumns(sql)}
    FROM ${page} g
    JOIN content_creation_requests p ON p.id = g.content_creation_request_id
    ORDER BY g.gallery_at DESC, g.id DESC`;
}

/**
 * The parts of the scope (scopeParts() on generated_images.owner_id), each with the ORDER BY
 * that streams from its index: gallery order, and for the unowned (legacy) images (owner_id
 * IS NULL) ordered by owner_id too: IS NULL is no equality, so only the index's own order,
 * owner_id first, tells the planner that the scan is already in gallery order.
 */
function armsOf(sql: Sql, scope: Scope): { where: PendingQuery<Row[]>; order: PendingQuery<Row[]> }[] {
  return scopeParts(sql, scope, 'g.owner_id').map((part) => ({
    where: part.where,
    order: part.unowned ? sql`ORDER BY g.owner_id, g.gallery_at DESC, g.id DESC` : sql`ORDER BY g.gallery_at DESC, g.id DESC`,
  }));
}

/**
 * The rows a page is taken from: generated_images, or with a project filter that project's
 * rows, read by project id before any other condition applies (OFFSET 0: a fence the planner
 * does not see through). A project holds at most a few thousand slots; left to itself, the
 * generic plan of a project's page ANDed its rows with a bitmap of all of the owner's (970,000
 * at 10 M images: 160 ms for a page of 8).
 */
function rowsOf(sql: Sql, q: GalleryQuery) {
  if (q.projectId === undefined) return sql`generated_images`;
  return sql`(SELECT * FROM generated_images WHERE content_creation_request_id = ${q.projectId}::uuid OFFSET 0)`;
}

/**
 * The first `q.limit` of the scope's images matching the page's filters, in gallery order, as a
 * FROM item: one ordered scan per arm of the scope, each stopped at the limit, merged (a Merge
 * Append of Limits), never an OR that reads both sets whole and sorts them. Each arm carries
 * its own ORDER BY and LIMIT: PostgreSQL 18 does not push an outer ORDER BY ... LIMIT into the
 * arms of a UNION ALL (it appends and sorts everything).
 */
function pageInScope(sql: Sql, scope: Scope, q: GalleryQuery) {
  const arms = armsOf(sql, scope).map(
    (arm) => sql`(SELECT * FROM ${rowsOf(sql, q)} g WHERE ${arm.where} AND ${filtersOf(sql, q)} ${arm.order} LIMIT ${q.limit})`,
  );
  if (arms.length === 1) return sql`${arms[0]!}`;
  return sql`(SELECT * FROM (${arms[0]!} UNION ALL ${arms[1]!}) g ORDER BY g.gallery_at DESC, g.id DESC LIMIT ${q.limit})`;
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
