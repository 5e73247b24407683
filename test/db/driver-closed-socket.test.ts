import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
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
  const run = await runFixture('killed-in-transaction.ts');
  expect(JSON.parse(run.stdout.trim())).toEqual({ outcome: expect.stringMatching(/^rejected /), one: 1 });
});

// The same release leaves the array-type fetch of a new connection without a handler: a reset
// at that moment (a database restart) ended the service with an unhandled rejection.
it('a connection reset while it fetches array types fails the query that opened it, and the process lives on', async () => {
  const run = await runFixture('reset-during-type-fetch.ts');
  expect(JSON.parse(run.stdout.trim())).toEqual({ outcome: 'rejected ECONNRESET' });
});

async function runFixture(name: string) {
  return promisify(execFile)(process.execPath, [fixture(name), db.url], { timeout: 30_000 }).catch((err: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`the process failed: ${err.message}\nstdout: ${err.stdout}\nstderr: ${err.stderr}`);
  });
}
