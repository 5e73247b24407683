import { Hono } from 'hono';
import type { Sql } from '../../db/database.ts';
import { AppError } from '../../errors.ts';
import type { AppEnv } from '../env.ts';

export function opsRoutes(sql: Sql) {
  const app = new Hono<AppEnv>();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await Promise.race([sql`SELECT 1`, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2_000).unref())]);
    } catch (err) {
      throw new AppError('UNAVAILABLE', 'the database does not answer', [], { cause: err });
    }
    return c.json({ status: 'ok' });
  });
  return app;
}
