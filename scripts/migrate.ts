// npm run migrate: applies pending migrations to DATABASE_URL (or the embedded PostgreSQL
// under DATA_DIR), then exits. The service also migrates at start; both are safe together.
import { ConfigError, loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { createLogger } from '../src/log.ts';

try {
  const config = loadConfig(process.env);
  const log = createLogger(config.LOG_LEVEL);
  const db = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 1, log });
  try {
    const applied = await migrate(db.url, log);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'nothing to apply: the database is up to date');
  } finally {
    await db.close();
  }
} catch (err) {
  if (err instanceof ConfigError) for (const p of err.problems) console.error(`config: ${p}`);
  else console.error(err);
  process.exit(1);
}
