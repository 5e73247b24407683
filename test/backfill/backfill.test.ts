import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackfill } from '../../src/backfill/run.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { expectedTotals, TEMPLATES, writeLegacyFixture } from './legacy-fixture.ts';

const COPIES = 250; // 12 shapes x 250 = 3,000 legacy projects

let t: TestApp;
let ids: Map<string, string[]>;
beforeAll(async () => {
  t = await startTestApp({}, { runner: false });
  ids = await writeLegacyFixture(t.db.sql, COPIES);
});
afterAll(() => t.close());

async function tableState() {
  return t.db.sql<{ k: string }[]>`
    SELECT content_creation_request_id || ':' || scene_index || ':' || image_index || '=' || coalesce(image_url, '') || ':' || status AS k
    FROM generated_images ORDER BY 1`.then((rows) => rows.map((r) => r.k));
}

async function readAll(projectIds: string[]) {
  const out: unknown[] = [];
  for (const id of projectIds) {
    const res = await t.call('GET', `/projects/${id}`);
    expect(res.status).toBe(200);
    out.push(res.body.generatedOutput);
  }
  return out;
}

describe('backfill of a messy legacy database', () => {
  const expected = expectedTotals(COPIES);
  // A sample of every shape, read through the API at each stage.
  const sample = () => TEMPLATES.flatMap((tpl) => ids.get(tpl.name)!.slice(0, 2));
  let beforeBackfill: unknown[];

  it('a dry run counts what it would do and writes nothing', async () => {
    beforeBackfill = await readAll(sample());
    const before = await tableState();
    const summary = await runBackfill(t.db.sql, { batchSize: 500, dryRun: true, pruneLegacy: false });
    expect(summary).toMatchObject({ projectsScanned: expected.projects, legacyImages: expected.valid, wouldInsert: expected.inserted, alreadyPresent: expected.already, rowsInserted: 0 });
    expect(await tableState()).toEqual(before);
  });

  it('inserts every usable legacy image exactly once and counts every skip by reason', async () => {
    const skips: { reason: string; projectId: string }[] = [];
    const summary = await runBackfill(t.db.sql, { batchSize: 500, dryRun: false, pruneLegacy: false, onSkip: (s) => skips.push(s) });
    expect(summary.projectsScanned).toBe(expected.projects);
    expect(summary.batches).toBe(Math.ceil(expected.projects / 500));
    expect(summary.rowsInserted).toBe(expected.inserted);
    expect(summary.alreadyPresent).toBe(expected.already);
    expect(Object.fromEntries(Object.entries(summary.skipped).filter(([, n]) => n > 0))).toEqual(expected.skipped);
    expect(summary.skippedTotal).toBe(expected.skippedTotal);
    expect(skips).toHaveLength(expected.skippedTotal);

    const [counts] = await t.db.sql<{ legacy: number; all: number }[]>`
      SELECT count(*) FILTER (WHERE details->>'source' = 'legacy')::int AS legacy, count(*)::int AS all FROM generated_images`;
    expect(counts).toEqual({ legacy: expected.inserted, all: expected.inserted + expected.already });
    // The newer image won over the legacy URL of the same slot.
    const newer = ids.get('a newer image already in the table')![0]!;
    const [slot] = await t.db.sql<{ imageUrl: string }[]>`SELECT image_url FROM generated_images WHERE content_creation_request_id = ${newer} AND scene_index = 1 AND image_index = 0`;
    expect(slot!.imageUrl).toBe('https://new.test/fresh.png');
  });

  it('a second run inserts nothing', async () => {
    const before = await tableState();
    const summary = await runBackfill(t.db.sql, { batchSize: 777, dryRun: false, pruneLegacy: false });
    expect(summary.rowsInserted).toBe(0);
    expect(summary.alreadyPresent).toBe(expected.valid);
    expect(await tableState()).toEqual(before);
  });

  it('GET /projects/:id answers the same as before the backfill (except where a newer image already won)', async () => {
    const after = await readAll(sample());
    const stripIds = (o: any) => JSON.parse(JSON.stringify(o, (k, v) => (k === 'images' ? undefined : v)));
    const newerIds = new Set(ids.get('a newer image already in the table')!.slice(0, 2));
    sample().forEach((id, i) => {
      if (newerIds.has(id)) return;
      expect(stripIds(after[i]), id).toEqual(stripIds(beforeBackfill[i]));
    });
  });

  it('--prune-legacy removes only the imageUrls the rows provably cover, and reads do not change', async () => {
    const before = await readAll(sample());
    const summary = await runBackfill(t.db.sql, { batchSize: 500, dryRun: false, pruneLegacy: true });
    expect(summary.rowsInserted).toBe(0);
    expect(summary.scenesPruned).toBe(expected.prunable);
    const after = await readAll(sample());
    const stripIds = (o: any) => JSON.parse(JSON.stringify(o, (k, v) => (k === 'images' ? undefined : v)));
    expect(after.map(stripIds)).toEqual(before.map(stripIds));

    const messy = ids.get('messy entries')![0]!;
    const [row] = await t.db.sql<{ generatedOutput: any }[]>`SELECT generated_output FROM content_creation_requests WHERE id = ${messy}`;
    expect(row!.generatedOutput.scenes[0].imageUrls).toHaveLength(8); // garbage is never dropped
    expect(row!.generatedOutput.scenes[1]).not.toHaveProperty('imageUrls');
    const again = await runBackfill(t.db.sql, { batchSize: 500, dryRun: false, pruneLegacy: true });
    expect(again.scenesPruned).toBe(0);
  });

  it('--project limits the run to one project', async () => {
    const one = ids.get('clean')![3]!;
    await t.db.sql`DELETE FROM generated_images WHERE content_creation_request_id = ${one}`;
    await t.db.sql`UPDATE content_creation_requests SET generated_output = ${t.db.sql.json(TEMPLATES[0]!.output(3) as never)} WHERE id = ${one}`;
    const summary = await runBackfill(t.db.sql, { batchSize: 500, dryRun: false, pruneLegacy: false, projectId: one });
    expect(summary).toMatchObject({ projectsScanned: 1, rowsInserted: 3 });
  });
});
