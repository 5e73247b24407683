import { randomUUID } from 'node:crypto';
import type { Pool } from '../../src/db/database.ts';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';

/**
 * A legacy database in miniature: project shapes seen in the wild, each with the outcome
 * written down BY HAND (not computed by the code under test). `copies` of each.
 */
const PNG_DATA = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

export interface Template {
  name: string;
  output: (n: number) => unknown;
  /** Rows that already exist before the backfill (new images: they must win). */
  existing?: { sceneIndex: number; imageIndex: number; url: string }[];
  valid: number;
  alreadyPresent?: number;
  skipped: Record<string, number>;
  /** Scenes whose legacy imageUrls --prune-legacy removes. */
  prunable: number;
}

export const TEMPLATES: Template[] = [
  {
    name: 'clean',
    output: (n) => ({ version: 1, scenes: [{ prompt: 'a', imageUrls: [`https://cdn.test/${n}/a0.png`, `https://cdn.test/${n}/a1.png`] }, { prompt: 'b', imageUrls: [`https://cdn.test/${n}/b0.png`] }] }),
    valid: 3,
    skipped: {},
    prunable: 2,
  },
  { name: 'json null', output: () => null, valid: 0, skipped: { output_not_object: 1 }, prunable: 0 },
  { name: 'output a string', output: () => 'scenes go here', valid: 0, skipped: { output_not_object: 1 }, prunable: 0 },
  { name: 'output an array', output: () => [{ imageUrls: ['https://cdn.test/x.png'] }], valid: 0, skipped: { output_not_object: 1 }, prunable: 0 },
  { name: 'no scenes', output: () => ({ title: 'draft' }), valid: 0, skipped: { scenes_missing: 1 }, prunable: 0 },
  { name: 'scenes not an array', output: () => ({ scenes: { first: { imageUrls: ['https://cdn.test/x.png'] } } }), valid: 0, skipped: { scenes_not_array: 1 }, prunable: 0 },
  {
    name: 'imageUrls missing, null, a string, an object',
    output: (n) => ({ scenes: [{ prompt: 'a' }, { prompt: 'b', imageUrls: null }, { prompt: 'c', imageUrls: `https://cdn.test/${n}/c.png` }, { prompt: 'd', imageUrls: { 0: 'https://cdn.test/d.png' } }] }),
    valid: 0,
    skipped: { image_urls_missing: 1, image_urls_null: 1, image_urls_not_array: 2 },
    prunable: 0,
  },
  {
    name: 'messy entries',
    output: (n) => ({
      scenes: [
        { prompt: 'a', imageUrls: [null, '', 42, 'not a url', 'ftp://cdn.test/x.png', `https://cdn.test/${n}/ok.png`, PNG_DATA, 'data:text/html;base64,PGh0bWw+'] },
        { prompt: 'b', imageUrls: [`https://cdn.test/${n}/b0.png`, null, `https://cdn.test/${n}/b2.png`] },
      ],
    }),
    valid: 4,
    skipped: { entry_null: 2, entry_empty: 1, entry_not_string: 1, entry_not_url: 3 },
    prunable: 1, // scene b: blanks only, rows reach index 2; scene a holds garbage and stays
  },
  {
    name: 'duplicate scene indices',
    output: (n) => ({ scenes: [{ index: 2, imageUrls: [`https://cdn.test/${n}/p.png`] }, { index: 2, imageUrls: [`https://cdn.test/${n}/q.png`, `https://cdn.test/${n}/r.png`] }, { imageUrls: [`https://cdn.test/${n}/s.png`] }] }),
    valid: 1,
    skipped: { duplicate_scene_index: 3 },
    prunable: 1,
  },
  {
    name: 'scenes that are not objects',
    output: (n) => ({ scenes: ['just text', null, { prompt: 'c', imageUrls: [`https://cdn.test/${n}/c.png`] }] }),
    valid: 1,
    skipped: { scene_not_object: 2 },
    prunable: 1,
  },
  {
    name: 'explicit and unusable indices',
    output: (n) => ({ scenes: [{ index: 0, imageUrls: [`https://cdn.test/${n}/zero.png`] }, { index: '5', imageUrls: [`https://cdn.test/${n}/two.png`] }] }),
    valid: 2,
    skipped: {},
    prunable: 2,
  },
  {
    name: 'a newer image already in the table',
    output: (n) => ({ scenes: [{ prompt: 'a', imageUrls: [`https://cdn.test/${n}/old0.png`, `https://cdn.test/${n}/old1.png`] }] }),
    existing: [{ sceneIndex: 1, imageIndex: 0, url: 'https://new.test/fresh.png' }],
    valid: 2,
    alreadyPresent: 1,
    skipped: {},
    prunable: 1,
  },
];

export function expectedTotals(copies: number) {
  const skipped: Record<string, number> = {};
  let valid = 0;
  let already = 0;
  let prunable = 0;
  for (const t of TEMPLATES) {
    valid += t.valid * copies;
    already += (t.alreadyPresent ?? 0) * copies;
    prunable += t.prunable * copies;
    for (const [reason, n] of Object.entries(t.skipped)) skipped[reason] = (skipped[reason] ?? 0) + n * copies;
  }
  return { projects: TEMPLATES.length * copies, valid, inserted: valid - already, already, skipped, skippedTotal: Object.values(skipped).reduce((a, b) => a + b, 0), prunable };
}

/** Writes `copies` of every template as legacy projects (and their pre-existing rows). Returns the ids by template. */
export async function writeLegacyFixture(sql: Pool, copies: number): Promise<Map<string, string[]>> {
  const ids = new Map<string, string[]>(TEMPLATES.map((t) => [t.name, []]));
  const projects: { id: string; output: string }[] = [];
  const rows: { id: string; sceneIndex: number; imageIndex: number; url: string }[] = [];
  for (let n = 0; n < copies; n++) {
    for (const t of TEMPLATES) {
      const id = randomUUID();
      ids.get(t.name)!.push(id);
      projects.push({ id, output: JSON.stringify(t.output(n)) });
      for (const e of t.existing ?? []) rows.push({ id, ...e });
    }
  }
  for (let i = 0; i < projects.length; i += 1000) {
    const chunk = projects.slice(i, i + 1000);
    await sql`
      INSERT INTO content_creation_requests (id, user_id, title, generated_output)
      SELECT p.id, ${LOCAL_OWNER_ID}, 'legacy', p.output::jsonb FROM unnest(${chunk.map((p) => p.id)}::uuid[], ${chunk.map((p) => p.output)}::text[]) AS p(id, output)`;
  }
  if (rows.length > 0) {
    await sql`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
      SELECT r.id, r.s, r.i, 'succeeded', r.url FROM unnest(${rows.map((r) => r.id)}::uuid[], ${rows.map((r) => r.sceneIndex)}::int[],
        ${rows.map((r) => r.imageIndex)}::int[], ${rows.map((r) => r.url)}::text[]) AS r(id, s, i, url)`;
  }
  return ids;
}
