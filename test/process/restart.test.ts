import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/gated-provider.ts';
import { spawnService } from '../support/service-process.ts';

let db: TestDatabase;
let dataDir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-restart-'));
  await chmod(dataDir, 0o755);
});
afterAll(async () => {
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

async function statusCounts(projectId: string) {
  const rows = await db.sql<{ status: string; n: number }[]>`
    SELECT status, count(*)::int AS n FROM generated_images WHERE content_creation_request_id = ${projectId} GROUP BY status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n])) as Record<string, number>;
}

it('a service killed (-9) in the middle of a batch completes it after a restart', async () => {
  const env = {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    LOCAL_PROVIDER_DELAY_MS: '400',
    GENERATION_CONCURRENCY: '4',
    LEASE_MS: '1000',
    POLL_INTERVAL_MS: '100',
  };
  const first = await spawnService(env);
  const created = await first.fetchJson('/projects', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ scenes: Array.from({ length: 8 }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene: 3 }),
  });
  expect(created.status).toBe(202);
  const id = created.body.id as string;

  await until(async () => ((await statusCounts(id)).succeeded ?? 0) >= 4, 'a few images done');
  first.child.kill('SIGKILL');
  await first.exited;
  const atKill = await statusCounts(id);
  expect(atKill.running ?? 0).toBeGreaterThan(0);
  expect(atKill.succeeded).toBeLessThan(24);

  const second = await spawnService(env);
  try {
    await until(async () => (await statusCounts(id)).succeeded === 24, 'every slot succeeded after the restart', 60_000);
    expect(await statusCounts(id)).toEqual({ succeeded: 24 });
    const rows = await db.sql<{ storageKey: string }[]>`SELECT storage_key FROM generated_images WHERE content_creation_request_id = ${id}`;
    expect(rows).toHaveLength(24);
    expect(new Set(rows.map((r) => r.storageKey)).size).toBe(24);
    for (const r of rows) expect(existsSync(path.join(dataDir, 'files', r.storageKey))).toBe(true);
    const project = await second.fetchJson(`/projects/${id}`);
    expect(project.body.status).toBe('completed');
    expect(project.body.generatedOutput.scenes.flatMap((s: any) => s.imageUrls).filter(Boolean)).toHaveLength(24);
  } finally {
    second.child.kill('SIGTERM');
    const code = await second.exited;
    if (code !== 0) console.log(JSON.stringify(second.logs.slice(-6)));
    expect(code).toBe(0);
  }
});
