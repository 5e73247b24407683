import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/killed-in-transaction.ts', import.meta.url));
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
});
afterAll(async () => {
  await db.drop();
});

// postgres.js 3.4.9 crashes the process when a connection closes under a transaction (issues
// porsager/postgres#1154, #1208): patches/postgres+3.4.9.patch guards its deferred write. A
// database restart (test/process/db-outage.test.ts) hits this path by chance; this hits it
// every time.
it('a transaction whose backend is killed rejects with CONNECTION_CLOSED, and the process lives on', async () => {
  const run = await promisify(execFile)(process.execPath, [SCRIPT, db.url], { timeout: 30_000 }).catch((err: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`the process failed: ${err.message}\nstdout: ${err.stdout}\nstderr: ${err.stderr}`);
  });
  expect(JSON.parse(run.stdout.trim())).toEqual({ outcome: expect.stringMatching(/^rejected /), one: 1 });
});
