import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/gated-provider.ts';
import { spawnService } from '../support/service-process.ts';
import { postProject, referencedKeys, statusCounts, storedKeys } from './support.ts';

let db: TestDatabase;
let dataDir: string;
let fake: FakeOpenAI;
beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-crash-'));
  await chmod(dataDir, 0o755);
  fake = await startFakeOpenAI({ delayMs: 300 });
});
afterAll(async () => {
  await fake.close();
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

it('kill -9 in the middle of a batch: after a restart every slot completes once, none left running, no orphan object', async () => {
  const env = {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    IMAGE_PROVIDER: 'openai',
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    GENERATION_CONCURRENCY: '4',
    LEASE_MS: '1000',
    POLL_INTERVAL_MS: '100',
  };
  const first = await spawnService(env);
  const created = await postProject(first.baseUrl, { scenes: Array.from({ length: 8 }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene: 3 });
  expect(created.status).toBe(202);
  const id = created.body.id as string;
  const slots = 24;

  await until(async () => ((await statusCounts(db.sql, id)).succeeded ?? 0) >= 4, 'a few images done');
  first.child.kill('SIGKILL');
  await first.exited;
  const inFlightAtKill = fake.requests.length - fake.answered();
  const atKill = await statusCounts(db.sql, id);
  expect(atKill.running ?? 0).toBeGreaterThan(0);
  expect(atKill.succeeded).toBeLessThan(slots);

  const second = await spawnService(env);
  try {
    await until(async () => (await statusCounts(db.sql, id)).succeeded === slots, 'every slot succeeded after the restart', 60_000);
    expect(await statusCounts(db.sql, id)).toEqual({ succeeded: slots });
    const rows = await db.sql<{ k: string }[]>`SELECT scene_index || ':' || image_index AS k FROM generated_images WHERE content_creation_request_id = ${id}`;
    expect(new Set(rows.map((r) => r.k)).size).toBe(slots);
    // Paid at most once per slot, plus what was on the wire when the process died.
    expect(fake.requests.length).toBeLessThanOrEqual(slots + inFlightAtKill);
    expect(fake.requests.length).toBeGreaterThanOrEqual(slots);
    // Every stored object is referenced by exactly one row, and every row's object exists.
    expect(await storedKeys(dataDir)).toEqual(await referencedKeys(db.sql));
    const project = await second.fetchJson(`/projects/${id}`);
    expect(project.body.status).toBe('completed');
  } finally {
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }
});
