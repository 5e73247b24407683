import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/gated-provider.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { postProject, statusCounts } from './support.ts';

let db: TestDatabase;
let dataDir: string;
let fake: FakeOpenAI;
beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-replicas-'));
  await chmod(dataDir, 0o755);
  fake = await startFakeOpenAI({ delayMs: 60 });
});
afterAll(async () => {
  await fake.close();
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

const succeededBy = (p: ServiceProcess) => p.logs.filter((l) => l.msg === 'image succeeded').length;

it('two replicas on one database share the queue: each slot generated once, both do work, SIGTERM hands unfinished slots back', async () => {
  const env = {
    DATABASE_URL: db.url,
    // One shared store folder stands in for a shared object store (Supabase in production).
    DATA_DIR: dataDir,
    IMAGE_PROVIDER: 'openai',
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    GENERATION_CONCURRENCY: '3',
    // Long enough that a replica stalled by the loaded test machine (CI runs every file on 2
    // cores) does not lose a lease mid-call, which would make a second provider call: the
    // recovery of expired leases has tests of its own (test/process/restart.test.ts).
    LEASE_MS: '10000',
    POLL_INTERVAL_MS: '200',
    LOG_LEVEL: 'debug',
  };
  const [a, b] = await Promise.all([spawnService(env), spawnService(env)]);
  try {
    const created = await postProject(a.baseUrl, { scenes: Array.from({ length: 20 }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene: 2 });
    const id = created.body.id as string;
    await until(async () => (await statusCounts(db.sql, id)).succeeded === 40, 'all 40 slots succeeded', 60_000);
    expect(await statusCounts(db.sql, id)).toEqual({ succeeded: 40 });
    expect(fake.requests).toHaveLength(40);
    // A replica logs a success after its commit: the last line may still be on its way through the pipe.
    await until(() => succeededBy(a) + succeededBy(b) >= 40, 'every success logged', 10_000);
    expect(succeededBy(a) + succeededBy(b)).toBe(40);
    expect(succeededBy(a)).toBeGreaterThan(0);
    expect(succeededBy(b)).toBeGreaterThan(0);
    const viaB = await b.fetchJson(`/projects/${id}`);
    expect(viaB.body.generatedOutput.scenes.flatMap((s: any) => s.imageUrls).filter(Boolean)).toHaveLength(40);
  } finally {
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
  }
});

it('SIGTERM: stops claiming, hands in-flight slots back at the end of the grace period, exits 0; another replica finishes them', async () => {
  const slow = await startFakeOpenAI({ delayMs: 5_000 });
  const env = {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    IMAGE_PROVIDER: 'openai',
    OPENAI_API_KEY: slow.apiKey,
    OPENAI_BASE_URL: slow.url,
    GENERATION_CONCURRENCY: '4',
    SHUTDOWN_GRACE_MS: '300',
    LEASE_MS: '60000', // far longer than the test: only an explicit hand-back can free the slots
    POLL_INTERVAL_MS: '100',
  };
  const a = await spawnService(env);
  let b: ServiceProcess | undefined;
  try {
    const created = await postProject(a.baseUrl, { scenes: Array.from({ length: 6 }, (_, i) => ({ prompt: `slow ${i}` })) });
    const id = created.body.id as string;
    await until(() => slow.requests.length === 4, 'four provider calls in flight');
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const after = await statusCounts(db.sql, id);
    expect(after.running ?? 0).toBe(0);
    expect(after.queued).toBe(6);
    const log = a.logs.find((l) => l.msg === 'handed unfinished slots back to the queue');
    expect(log).toBeDefined();

    // Another replica takes them at once (the lease would not have expired for a minute).
    b = await spawnService({ ...env, OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: fake.apiKey });
    await until(async () => (await statusCounts(db.sql, id)).succeeded === 6, 'the other replica finished them', 30_000);
    const [{ failed }] = (await db.sql`SELECT count(*) FILTER (WHERE status = 'failed')::int AS failed FROM generated_images WHERE content_creation_request_id = ${id}`) as unknown as [{ failed: number }];
    expect(failed).toBe(0);
  } finally {
    a.child.kill('SIGKILL');
    b?.child.kill('SIGTERM');
    if (b) expect(await b.exited).toBe(0);
    await slow.close();
  }
});
