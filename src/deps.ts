import path from 'node:path';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { createProjectCache, type ProjectCache } from './domain/project-cache.ts';
import { createRunner, type Runner } from './domain/runner.ts';
import type { Logger } from './log.ts';
import { createLocalProvider } from './providers/local.ts';
import type { ImageProvider } from './providers/provider.ts';
import { createLocalStore, type LocalObjectStore } from './storage/local.ts';

/** The owner of every project in single-user mode (no authentication configured). */
export const LOCAL_OWNER_ID = '00000000-0000-4000-8000-000000000001';

export interface Deps {
  config: Config;
  log: Logger;
  db: Database;
  store: LocalObjectStore;
  providers: ReadonlyMap<string, ImageProvider>;
  runner: Runner;
  projectCache: ProjectCache;
  ownerId: string;
  close(): Promise<void>;
}

export function publicBaseUrl(config: Config): string {
  if (config.PUBLIC_BASE_URL) return config.PUBLIC_BASE_URL;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`;
}

/** Builds everything once: database (migrated), store, providers, runner. */
export async function createDeps(config: Config, log: Logger, overrides: { providers?: ReadonlyMap<string, ImageProvider> } = {}): Promise<Deps> {
  const db = await openDatabase({
    url: config.DATABASE_URL,
    dataDir: config.DATA_DIR,
    poolSize: config.DATABASE_POOL_SIZE ?? 20,
    log,
  });
  try {
    await migrate(db.url, log);
    const [row] = await db.sql<{ maxConnections: number }[]>`SELECT current_setting('max_connections')::int AS max_connections`;
    const poolSize = config.DATABASE_POOL_SIZE ?? 20;
    if (row && poolSize > row.maxConnections - 3) {
      // Connections past the server's limit fail with "too many clients": say so now, not under load.
      log.warn({ poolSize, maxConnections: row.maxConnections }, 'DATABASE_POOL_SIZE exceeds what the server accepts; lower it');
    }
  } catch (err) {
    await db.close();
    throw err;
  }
  const store = createLocalStore({ root: path.join(config.DATA_DIR, 'files'), publicBaseUrl: publicBaseUrl(config) });
  const providers = overrides.providers ?? new Map([['local', createLocalProvider({ delayMs: config.LOCAL_PROVIDER_DELAY_MS })]]);
  const runner = createRunner({
    sql: db.sql,
    providers,
    defaultProvider: config.IMAGE_PROVIDER,
    store,
    log: log.child({ component: 'runner' }),
    concurrency: config.GENERATION_CONCURRENCY,
    leaseMs: config.LEASE_MS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    maxAttempts: config.MAX_ATTEMPTS,
  });
  return {
    config,
    log,
    db,
    store,
    providers,
    runner,
    projectCache: createProjectCache({ maxBytes: config.PROJECT_CACHE_MB * 1024 * 1024, maxAgeMs: 60_000 }),
    ownerId: LOCAL_OWNER_ID,
    async close() {
      await runner.stop(config.SHUTDOWN_GRACE_MS);
      await db.close();
    },
  };
}
