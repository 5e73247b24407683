import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/gated-provider.ts';
import { spawnService } from '../support/service-process.ts';
import { postProject } from './support.ts';

const SECRET = `whsec_${Buffer.from('sceneworks-webhook-crash-test!!!').toString('base64')}`;

let db: TestDatabase;
let dataDir: string;
let server: Server;
let url: string;
const received: { id: string; verified: boolean }[] = [];
let hang = true;

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-webhook-crash-'));
  await chmod(dataDir, 0o755);
  const verifier = new Webhook(SECRET);
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      let verified = true;
      try {
        verifier.verify(body, req.headers as Record<string, string>);
      } catch {
        verified = false;
      }
      received.push({ id: String(req.headers['webhook-id']), verified });
      if (hang) return; // the first replica is killed while it waits for this answer
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await db.drop();
  await rm(dataDir, { recursive: true, force: true });
});

it('kill -9 of the replica mid-delivery: another replica sends the event again, same webhook-id, and it is delivered once recorded', async () => {
  const env = {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_POLL_MS: '50',
    // The lease is 2 x timeout + 5 s: the second replica takes the event over ~5.6 s after the claim.
    WEBHOOK_TIMEOUT_MS: '300',
    WEBHOOK_RETRY_SCHEDULE_S: '60',
  };
  const first = await spawnService(env);
  const created = await postProject(first.baseUrl, { scenes: [{ prompt: 'a crash' }], webhook: { url, events: ['project.finished'] } });
  expect(created.status).toBe(202);
  await until(() => received.length === 1, 'the first delivery reaches the receiver', 30_000);
  first.child.kill('SIGKILL');
  await first.exited;
  hang = false;
  const second = await spawnService(env);
  try {
    await until(async () => (await db.sql`SELECT 1 FROM webhook_events WHERE project_id = ${created.body.id} AND status = 'delivered'`).length === 1, 'delivered by the second replica', 30_000);
    expect(received.length).toBe(2);
    expect(received[1]!.id).toBe(received[0]!.id);
    expect(received.every((r) => r.verified)).toBe(true);
    const attempts = await db.sql<{ attempt: number; status: string }[]>`SELECT attempt, status FROM webhook_deliveries WHERE project_id = ${created.body.id} ORDER BY id`;
    expect(attempts).toEqual([{ attempt: 2, status: 'delivered' }]); // the killed attempt left no record, only its lease
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});
