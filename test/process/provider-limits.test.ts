import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jitterAllowanceMs } from '../../src/db/provider-limits.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/gated-provider.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { postProject, statusCounts } from './support.ts';

/**
 * A provider's limits belong to the deployment: two real replicas on one database, the OpenAI
 * adapter against its fake, which records when each call arrives.
 */
describe('provider limits across replicas', () => {
  let db: TestDatabase;
  let dataDir: string;
  let fake: FakeOpenAI;
  let replicas: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-limits-'));
    await chmod(dataDir, 0o755);
    fake = await startFakeOpenAI({ delayMs: 40, retryAfterSeconds: 2 });
  });
  afterAll(async () => {
    await stopAll();
    await fake.close();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function stopAll() {
    for (const r of replicas) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
    replicas = [];
  }

  const env = (extra: Record<string, string>) => ({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    IMAGE_PROVIDER: 'openai',
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    GENERATION_CONCURRENCY: '4',
    LEASE_MS: '10000',
    POLL_INTERVAL_MS: '100',
    RETRY_BASE_MS: '50',
    ...extra,
  });

  const generations = () => fake.requests.filter((r) => r.path.endsWith('/images/generations'));

  it('OPENAI_RPM holds for the two replicas together: no window has more calls than the limit, and no slot fails for it', async () => {
    fake.reset();
    const perWindow = 4;
    const windowMs = 2000;
    replicas = await Promise.all([0, 1].map(() => spawnService(env({ OPENAI_RPM: String(perWindow), PROVIDER_RPM_WINDOW_MS: String(windowMs), LOG_LEVEL: 'debug' }))));
    const created = await postProject(replicas[0]!.baseUrl, { scenes: Array.from({ length: 4 }, (_, i) => ({ prompt: `limited ${i}` })), imagesPerScene: 3 });
    expect(created.status).toBe(202);
    await until(async () => (await statusCounts(db.sql, created.body.id)).succeeded === 12, 'all 12 slots succeeded', 60_000);
    expect(await statusCounts(db.sql, created.body.id)).toEqual({ succeeded: 12 });
    const times = generations().map((r) => r.at).sort((a, b) => a - b);
    expect(times).toHaveLength(12); // one call per slot: waiting for the limit is not an attempt
    for (let i = 0; i < times.length; i++) {
      const inWindow = times.filter((t) => t >= times[i]! && t < times[i]! + windowMs).length;
      expect(inWindow, `calls in the ${windowMs} ms from call ${i}`).toBeLessThanOrEqual(perWindow);
    }
    // And it is a limit, not a stall: the 12 calls took about 12 / 4 windows, not much more.
    expect(times.at(-1)! - times[0]!).toBeLessThan((12 / perWindow) * (windowMs + jitterAllowanceMs(windowMs)) * 1.5);
    // Both replicas made calls.
    await until(() => replicas.reduce((n, r) => n + r.logs.filter((l) => l.msg === 'image succeeded').length, 0) === 12, 'every success logged', 10_000);
    const byReplica = replicas.map((r) => r.logs.filter((l) => l.msg === 'image succeeded').length);
    expect(byReplica.every((n) => n > 0)).toBe(true);
    await stopAll();
  });

  it('OPENAI_CONCURRENCY with PROVIDER_CONCURRENCY_SCOPE=cluster holds for the two replicas together', async () => {
    fake.reset();
    replicas = await Promise.all([0, 1].map(() => spawnService(env({ OPENAI_CONCURRENCY: '2', PROVIDER_CONCURRENCY_SCOPE: 'cluster', LOG_LEVEL: 'debug' }))));
    const created = await postProject(replicas[0]!.baseUrl, { scenes: Array.from({ length: 8 }, (_, i) => ({ prompt: `narrow ${i}` })), imagesPerScene: 2 });
    let most = 0;
    const answeredBefore = fake.answered(); // reset() forgets requests, not the answered count
    const watching = setInterval(() => (most = Math.max(most, fake.requests.length - (fake.answered() - answeredBefore))), 2);
    try {
      await until(async () => (await statusCounts(db.sql, created.body.id)).succeeded === 16, 'all 16 slots succeeded', 60_000);
    } finally {
      clearInterval(watching);
    }
    expect(most).toBeLessThanOrEqual(2); // each replica alone would allow 2, together 4
    expect(most).toBe(2);
    expect(generations()).toHaveLength(16);
    await until(() => replicas.reduce((n, r) => n + r.logs.filter((l) => l.msg === 'image succeeded').length, 0) === 16, 'every success logged', 10_000);
    expect(replicas.every((r) => r.logs.some((l) => l.msg === 'image succeeded'))).toBe(true);
    await stopAll();
  });

  it('a 429 seen by one replica pauses the provider for both until its Retry-After', async () => {
    fake.reset();
    replicas = await Promise.all([0, 1].map(() => spawnService(env({ LOG_LEVEL: 'debug' }))));
    // Warm both replicas up so both are calling when the 429 comes.
    fake.script(...Array<'ok'>(6).fill('ok'), 'rate_limit');
    const created = await postProject(replicas[0]!.baseUrl, { scenes: Array.from({ length: 10 }, (_, i) => ({ prompt: `paused ${i}` })), imagesPerScene: 3 });
    await until(async () => (await statusCounts(db.sql, created.body.id)).succeeded === 30, 'all 30 slots succeeded', 60_000);
    const calls = generations();
    const t429 = calls[6]!.at; // the seventh call was answered 429
    // Calls already on their way when the 429 was answered may still arrive just after it; then
    // nobody calls until the Retry-After (2 s) is over.
    const during = calls.filter((c) => c.at > t429 + 300 && c.at < t429 + 2000 - 100);
    expect(during.map((c) => c.at - t429)).toEqual([]);
    const after = calls.filter((c) => c.at >= t429 + 1900);
    expect(after.length).toBeGreaterThan(0);
    // Both replicas called before the pause and after it.
    for (const r of replicas) expect(r.logs.some((l) => l.msg === 'image succeeded')).toBe(true);
    expect(await statusCounts(db.sql, created.body.id)).toEqual({ succeeded: 30 });
    await stopAll();
  });
});
