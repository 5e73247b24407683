import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assignOwner } from '../../src/backfill/assign-owner.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const CLI = fileURLToPath(new URL('../../scripts/backfill.ts', import.meta.url));
const OWNER = randomUUID();
const SOMEONE = randomUUID();

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

async function seed(unowned: number): Promise<string[]> {
  const ids = Array.from({ length: unowned }, () => randomUUID());
  await db.sql`INSERT INTO content_creation_requests (id, user_id) SELECT unnest(${ids}::uuid[]), NULL`;
  // One queued slot each: pending work that becomes the owner's.
  await db.sql`INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status) SELECT unnest(${ids}::uuid[]), 1, 0, 'queued'`;
  return ids;
}

const ownersOf = (ids: string[]) =>
  db.sql<{ userId: string | null; n: number }[]>`
    SELECT user_id, count(*)::int AS n FROM content_creation_requests WHERE id = ANY(${ids}::uuid[]) GROUP BY user_id`;

describe('assignOwner', () => {
  it('assigns in batches, resumes after a crash mid-run, charges pending slots to the owner, leaves owned projects alone', async () => {
    const ids = await seed(25);
    const theirs = randomUUID();
    await db.sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${theirs}, ${SOMEONE})`;

    expect(await assignOwner(db.sql, { ownerId: OWNER, batchSize: 10, dryRun: true })).toEqual({ dryRun: true, unowned: 25, assigned: 0 });
    expect(await ownersOf(ids)).toEqual([{ userId: null, n: 25 }]);

    // The process dies after its first batch committed.
    await expect(
      assignOwner(db.sql, { ownerId: OWNER, batchSize: 10, dryRun: false, onBatch: () => { throw new Error('killed'); } }),
    ).rejects.toThrow('killed');
    expect((await ownersOf(ids)).find((r) => r.userId === OWNER)?.n).toBe(10);

    const batches: number[] = [];
    const rest = await assignOwner(db.sql, { ownerId: OWNER, batchSize: 10, dryRun: false, onBatch: (p) => batches.push(p.assigned) });
    expect(rest).toEqual({ dryRun: false, unowned: 15, assigned: 15 });
    expect(batches).toEqual([10, 15]);
    expect(await ownersOf(ids)).toEqual([{ userId: OWNER, n: 25 }]);
    const [pending] = await db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM generated_images WHERE owner_id = ${OWNER} AND status = 'queued'`;
    expect(pending!.n).toBe(25);
    const [row] = await db.sql<{ userId: string }[]>`SELECT user_id FROM content_creation_requests WHERE id = ${theirs}`;
    expect(row!.userId).toBe(SOMEONE);
    expect(await assignOwner(db.sql, { ownerId: OWNER, batchSize: 10, dryRun: false })).toMatchObject({ assigned: 0 });
  });

  it('an Idempotency-Key the owner already uses is dropped from the adopted project, never from the owner’s', async () => {
    const mine = randomUUID();
    const adopted = randomUUID();
    await db.sql`INSERT INTO content_creation_requests (id, user_id, idempotency_key) VALUES (${mine}, ${OWNER}, 'k1'), (${adopted}, NULL, 'k1')`;
    await assignOwner(db.sql, { ownerId: OWNER, batchSize: 10, dryRun: false, projectId: adopted });
    const rows = await db.sql<{ id: string; idempotencyKey: string | null }[]>`
      SELECT id, idempotency_key FROM content_creation_requests WHERE id IN (${mine}, ${adopted}) ORDER BY id = ${mine}`;
    expect(rows).toEqual([{ id: adopted, idempotencyKey: null }, { id: mine, idempotencyKey: 'k1' }]);
  });
});

describe('npm run backfill -- --assign-owner', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DATABASE_URL: db.url, DATA_DIR: path.join(tmpdir(), 'sceneworks-assign-cli'), LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  it('assigns every unowned project and says how many; refuses a bad id or a mixed run', async () => {
    const ids = await seed(7);
    const out = await run(['--assign-owner', OWNER, '--batch-size', '3', '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ dryRun: false, unowned: 7, assigned: 7 });
    expect(await ownersOf(ids)).toEqual([{ userId: OWNER, n: 7 }]);
    expect((await run(['--assign-owner', 'not-a-uuid'])).code).toBe(2);
    expect((await run(['--assign-owner', OWNER, '--prune-legacy'])).code).toBe(2);
  });
});
