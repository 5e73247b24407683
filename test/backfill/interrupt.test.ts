import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { expectedTotals, writeLegacyFixture } from './legacy-fixture.ts';

/**
 * The real CLI (`node scripts/backfill.ts`), killed with SIGKILL in the middle of a run and
 * run again, ends exactly where an uninterrupted run ends on the same data.
 */
const CLI = fileURLToPath(new URL('../../scripts/backfill.ts', import.meta.url));
const COPIES = 200;

let interrupted: TestDatabase;
let uninterrupted: TestDatabase;
beforeAll(async () => {
  [interrupted, uninterrupted] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  await writeLegacyFixture(interrupted.sql, COPIES);
  // The same projects (same ids, same JSON) and pre-existing rows in the second database.
  const projects = await interrupted.sql<{ id: string; output: string }[]>`SELECT id, generated_output::text AS output FROM content_creation_requests`;
  await uninterrupted.sql`
    INSERT INTO content_creation_requests (id, user_id, title, generated_output)
    SELECT p.id, ${LOCAL_OWNER_ID}, 'legacy', p.output::jsonb FROM unnest(${projects.map((p) => p.id)}::uuid[], ${projects.map((p) => p.output)}::text[]) AS p(id, output)`;
  const rows = await interrupted.sql<{ projectId: string; sceneIndex: number; imageIndex: number; imageUrl: string }[]>`
    SELECT content_creation_request_id AS project_id, scene_index, image_index, image_url FROM generated_images`;
  await uninterrupted.sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
    SELECT r.p, r.s, r.i, 'succeeded', r.u FROM unnest(${rows.map((r) => r.projectId)}::uuid[], ${rows.map((r) => r.sceneIndex)}::int[],
      ${rows.map((r) => r.imageIndex)}::int[], ${rows.map((r) => r.imageUrl)}::text[]) AS r(p, s, i, u)`;
});
afterAll(async () => {
  await interrupted.drop();
  await uninterrupted.drop();
});

function run(db: TestDatabase, args: string[], killAfterBatches?: number): Promise<{ code: number | null; stdout: string; stderr: string; killed: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DATABASE_URL: db.url, DATA_DIR: path.join(tmpdir(), 'sceneworks-backfill-cli'), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Not a terminal: one progress line per batch at most every 2 s, so watch the table instead.
    });
    if (killAfterBatches !== undefined) {
      const timer = setInterval(async () => {
        const [row] = (await db.sql`SELECT count(*)::int AS n FROM generated_images WHERE details->>'source' = 'legacy'`) as unknown as [{ n: number }];
        if (row.n > 0 && !killed) {
          killed = true;
          child.kill('SIGKILL');
          clearInterval(timer);
        }
      }, 5);
      child.once('exit', () => clearInterval(timer));
    }
    child.once('exit', (code) => resolve({ code, stdout, stderr, killed }));
  });
}

async function state(db: TestDatabase) {
  const rows = await db.sql<{ k: string }[]>`
    SELECT content_creation_request_id || ':' || scene_index || ':' || image_index || '=' || coalesce(image_url, '') || ':' || status || ':' || (details->>'source') AS k
    FROM generated_images ORDER BY 1`;
  return rows.map((r) => r.k);
}

it('killed mid-run and run again, the result equals one uninterrupted run', async () => {
  const expected = expectedTotals(COPIES);
  const reportFile = path.join(tmpdir(), `backfill-report-${process.pid}.jsonl`);
  const first = await run(interrupted, ['--batch-size', '20'], 1);
  expect(first.killed).toBe(true);
  const partial = await state(interrupted);
  const complete = await run(uninterrupted, ['--batch-size', '500', '--json', '--report', reportFile]);
  expect(complete.code).toBe(0);
  expect(partial.length).toBeLessThan((await state(uninterrupted)).length);

  const rerun = await run(interrupted, ['--batch-size', '20', '--json']);
  expect(rerun.code).toBe(0);
  expect(await state(interrupted)).toEqual(await state(uninterrupted));
  const summary = JSON.parse(rerun.stdout);
  expect(summary.rowsInserted + summary.alreadyPresent).toBe(expected.valid);
  expect(summary.rowsInserted).toBeLessThan(expected.inserted);

  const full = JSON.parse(complete.stdout);
  expect(full).toMatchObject({ projectsScanned: expected.projects, rowsInserted: expected.inserted, skippedTotal: expected.skippedTotal });
  const lines = (await readFile(reportFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  expect(lines).toHaveLength(expected.skippedTotal);
  for (const line of lines) expect(Object.keys(line).sort()).toEqual(['imageIndex', 'projectId', 'reason', 'scene', 'sceneIndex']);
  const byReason: Record<string, number> = {};
  for (const line of lines) byReason[line.reason] = (byReason[line.reason] ?? 0) + 1;
  expect(byReason).toEqual(expected.skipped);
  await rm(reportFile, { force: true });

  const again = await run(uninterrupted, []);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/rows inserted:\s+0/);
  expect(again.stdout).toMatch(/nothing to insert/);
});

it('refuses bad options with a usage line and exit code 2, touching nothing', async () => {
  const res = await run(uninterrupted, ['--batch-size', 'zero']);
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/--batch-size must be an integer/);
  expect((await run(uninterrupted, ['--dry-run', '--prune-legacy'])).code).toBe(2);
  expect((await run(uninterrupted, ['--project', 'nope'])).code).toBe(2);
});
