import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { Logger } from '../log.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

/**
 * Applies pending migrations. node-pg-migrate holds an advisory lock while it runs; with
 * 'wait', a second process starting at the same moment waits and then finds nothing to do.
 */
export async function migrate(databaseUrl: string, log: Logger): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    // Our own name: an adopted legacy database may keep its own node-pg-migrate history in pgmigrations.
    migrationsTable: 'sceneworks_migrations',
    advisoryLockMode: 'wait',
    checkOrder: true,
    log: (message: string) => log.debug({ migrate: message }, 'migrate'),
  });
  const names = applied.map((m) => m.name);
  if (names.length > 0) log.info({ applied: names }, 'migrations applied');
  return names;
}
