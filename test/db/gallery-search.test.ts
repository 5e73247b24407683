import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listGallery, SEARCH_SCANS, type GalleryQuery, type SearchScans } from '../../src/db/gallery.ts';
import type { Scope } from '../../src/db/scope.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * A search's page is found by ordered scans of growing size, or by the search index when the
 * words turn out rare (src/db/gallery.ts, searchPage). Whichever way a page is found, it must
 * be exactly the page the plain query gives: checked for words of every frequency, for every
 * kind of scope, on later pages and with other filters, with the real scan sizes and with
 * small ones that send every way through its paths on a few thousand rows.
 */
let db: TestDatabase;
const OWNER = '00000000-0000-4000-8000-0000000000d1';
const OTHER = '00000000-0000-4000-8000-0000000000d2';
const IMAGES = 3_000;

beforeAll(async () => {
  db = await createTestDatabase();
  // 30 projects of the owner, 3 unowned, 10 of another owner, 100 images each; image k of a
  // set is k seconds newer than image k-1. Words by frequency: common (1 in 2), medium (1 in
  // 37), sparse (1 in 450), ancient (the owner's 3 oldest only), legacyonly (old unowned ones),
  // foxglove/foxes (prefix "fo"), secretword (the other owner's only).
  await db.sql`
    INSERT INTO content_creation_requests (id, user_id, title, settings, generated_output)
    SELECT md5('search-project-' || k)::uuid,
           CASE WHEN k < 30 THEN ${OWNER}::uuid WHEN k < 33 THEN NULL ELSE ${OTHER}::uuid END,
           'p' || k, '{}'::jsonb, '{"scenes": []}'::jsonb
    FROM generate_series(0, 42) k`;
  await db.sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, owner_id, prompt, provider, gallery_at, created_at)
    SELECT md5('search-project-' || (k / 100))::uuid, 1 + (k % 100), 0,
           CASE WHEN k % 97 = 5 THEN 'failed' ELSE 'succeeded' END,
           CASE WHEN k / 100 < 30 THEN ${OWNER}::uuid WHEN k / 100 < 33 THEN NULL ELSE ${OTHER}::uuid END,
           concat_ws(' ', 'image', k,
             CASE WHEN k % 2 = 0 THEN 'common' END, CASE WHEN k % 37 = 0 THEN 'medium' END,
             CASE WHEN k % 450 = 0 THEN 'sparse' END, CASE WHEN k < 3 THEN 'ancient' END,
             CASE WHEN k / 100 BETWEEN 30 AND 32 AND k % 100 < 4 THEN 'legacyonly' END,
             CASE WHEN k % 5 = 0 THEN 'foxglove' WHEN k % 7 = 0 THEN 'foxes' END,
             CASE WHEN k / 100 >= 33 THEN 'secretword common sparse ancient' END),
           CASE WHEN k % 3 = 0 THEN 'openai' ELSE 'local' END,
           timestamptz '2026-01-01' + make_interval(secs => k % 100 * 43 + k / 100), now()
    FROM generate_series(0, ${IMAGES + 300 + 1000 - 1}::int) k`;
  await db.sql`ANALYZE generated_images`;
});
afterAll(async () => {
  await db.drop();
});

const SMALL: SearchScans = { first: 20, most: 400 };
const SCOPES: [string, Scope][] = [
  ['an owner with the unowned images', { ownerId: OWNER, unowned: true }],
  ['an owner alone', { ownerId: OWNER, unowned: false }],
  ['an operator', { ownerId: null, unowned: true }],
];
// The text as typed, and the tsquery it means (a last word not followed by a space is a prefix).
const SEARCHES: [string, string][] = [
  ['common', `'common':*`],
  ['medium', `'medium':*`],
  ['sparse', `'sparse':*`],
  ['ancient', `'ancient':*`],
  ['legacyonly', `'legacyonly':*`],
  ['secretword', `'secretword':*`],
  ['common medium ', `'common' & 'medium'`],
  ['medium -common', `'medium' & !'common':*`],
  ['sparse or ancient', `'sparse' | 'ancient':*`],
  ['fo', `'fo':*`],
  ['nothingatall', `'nothingatall':*`],
];

/** The plain query: every matching image of the scope, sorted, the first `limit`. */
async function plainPage(scope: Scope, q: GalleryQuery, tsquery: string): Promise<string[]> {
  const owned =
    scope.ownerId === null
      ? scope.unowned ? db.sql`true` : db.sql`g.owner_id IS NOT NULL`
      : scope.unowned ? db.sql`(g.owner_id = ${scope.ownerId} OR g.owner_id IS NULL)` : db.sql`g.owner_id = ${scope.ownerId}`;
  const rows = await db.sql<{ id: string }[]>`
    SELECT g.id FROM generated_images g
    WHERE ${owned} AND g.status = 'succeeded' AND g.search_vector @@ ${tsquery}::tsquery
      ${q.before ? db.sql`AND (g.gallery_at, g.id) < (${q.before.galleryAt}::timestamptz, ${q.before.id}::uuid)` : db.sql``}
      ${q.provider ? db.sql`AND g.provider = ${q.provider}` : db.sql``}
      ${q.projectId ? db.sql`AND g.content_creation_request_id = ${q.projectId}::uuid` : db.sql``}
    ORDER BY g.gallery_at DESC, g.id DESC LIMIT ${q.limit}`;
  return rows.map((r) => r.id);
}

describe('a search page is the plain query page', () => {
  for (const [scopeName, scope] of SCOPES) {
    for (const [scansName, scans] of [['small scans', SMALL], ['the real scans', SEARCH_SCANS]] as const) {
      it(`${scopeName}, ${scansName}: every word, first and later pages, with filters`, async () => {
        for (const [text, tsquery] of SEARCHES) {
          const q: GalleryQuery = { limit: 11, before: null, search: text };
          const first = await listGallery(db.sql, scope, q, scans);
          const expected = await plainPage(scope, q, tsquery);
          expect(first.map((r) => r.id), `"${text}"`).toEqual(expected);
          if (first.length > 0) {
            const last = first.at(-1)!;
            const before = { galleryAt: (await db.sql<{ at: string }[]>`SELECT gallery_at::text AS at FROM generated_images WHERE id = ${last.id}`)[0]!.at, id: last.id };
            const next = await listGallery(db.sql, scope, { ...q, before }, scans);
            expect(next.map((r) => r.id), `"${text}", page 2`).toEqual(await plainPage(scope, { ...q, before }, tsquery));
          }
          const byProvider = await listGallery(db.sql, scope, { ...q, provider: 'openai' }, scans);
          expect(byProvider.map((r) => r.id), `"${text}", provider`).toEqual(await plainPage(scope, { ...q, provider: 'openai' }, tsquery));
        }
      });
    }
  }

  it('a project filter with a search', async () => {
    const projectId = (await db.sql<{ id: string }[]>`SELECT md5('search-project-' || 4)::uuid AS id`)[0]!.id;
    for (const [text, tsquery] of SEARCHES) {
      const q: GalleryQuery = { limit: 11, before: null, search: text, projectId };
      const page = await listGallery(db.sql, { ownerId: OWNER, unowned: true }, q, SMALL);
      expect(page.map((r) => r.id), `"${text}"`).toEqual(await plainPage({ ownerId: OWNER, unowned: true }, q, tsquery));
    }
  });
});
