import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createDeps, type Deps, type DepsOverrides } from '../../src/deps.ts';
import { createLogger } from '../../src/log.ts';
import type { ImageProvider } from '../../src/providers/provider.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';

export interface TestApp {
  app: App;
  deps: Deps;
  db: TestDatabase;
  dataDir: string;
  /** JSON request through the real app, in-process. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  /** Polls GET /projects/:id until its status is final. */
  waitForProject(id: string, timeoutMs?: number): Promise<any>;
  close(): Promise<void>;
}

export async function startTestApp(
  env: Record<string, string> = {},
  options: {
    providers?: ReadonlyMap<string, ImageProvider>;
    db?: TestDatabase;
    runner?: boolean;
    wrapStore?: DepsOverrides['wrapStore'];
    /** Where log lines go (to read them in a test); default: stdout. */
    logDestination?: { write(line: string): void };
  } = {},
): Promise<TestApp> {
  const db = options.db ?? (await createTestDatabase());
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-test-data-'));
  const config = loadConfig({
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    PUBLIC_BASE_URL: 'http://sceneworks.test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    POLL_INTERVAL_MS: '50',
    DATABASE_POOL_SIZE: '10',
    // The "remote" servers of legacy image URLs in tests are on loopback; the refusal of private
    // addresses (the default) is tested with this off (test/net/outbound.test.ts).
    LEGACY_FETCH_ALLOW_PRIVATE: 'true',
    ...env,
  });
  const deps = await createDeps(config, createLogger(config.LOG_LEVEL, options.logDestination), { providers: options.providers, wrapStore: options.wrapStore });
  const app = createApp(deps);
  if (options.runner !== false) {
    deps.runner.start();
    deps.webhooks?.start();
  }

  async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await app.request(url, init);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  }

  async function waitForProject(id: string, timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status, body } = await call('GET', `/projects/${id}`);
      if (status !== 200) throw new Error(`GET /projects/${id} answered ${status}: ${JSON.stringify(body)}`);
      if (!['queued', 'running'].includes(body.status)) return body;
      if (Date.now() > deadline) throw new Error(`project ${id} still ${body.status} after ${timeoutMs} ms: ${JSON.stringify(body.progress)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  return {
    app,
    deps,
    db,
    dataDir,
    call,
    waitForProject,
    async close() {
      await deps.close();
      if (!options.db) await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The object keys the local store holds under a project (`projects/<id>/scene-<i>/<file>`), sorted. */
export async function storedObjectKeys(dataDir: string, projectId: string): Promise<string[]> {
  const root = path.join(dataDir, 'files', 'projects', projectId);
  const scenes = await readdir(root).catch(() => [] as string[]);
  const files = await Promise.all(scenes.map(async (scene) => (await readdir(path.join(root, scene))).map((f) => `projects/${projectId}/${scene}/${f}`)));
  return files.flat().sort();
}
