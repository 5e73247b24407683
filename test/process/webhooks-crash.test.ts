import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { until } from '../support/gated-provider.ts';
import { spawnService } from '../support/service-process.ts';
import { postProject } from './support.ts';

const SECRET = `whsec_${Buffer.from('sceneworks-webhook-crash-test!!!').toString('base64')}`;

let db: TestDatabase;
let dataDir: string;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-webhook-crash-'));
  await chmod(dataDir, 0o755);
  receiver = await startWebhookReceiver(SECRET);
  // The first replica is killed while it waits for this answer; the next delivery gets a 200.
  receiver.script.push('hang');
});
afterAll(async () => {
  await receiver.close();
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
  const created = await postProject(first.baseUrl, { scenes: [{ prompt: 'a crash' }], webhook: { url: receiver.url, events: ['project.finished'] } });
  expect(created.status).toBe(202);
  await until(() => receiver.received.length === 1, 'the first delivery reaches the receiver', 30_000);
  first.child.kill('SIGKILL');
  await first.exited;
  const second = await spawnService(env);
  try {
    await until(async () => (await db.sql`SELECT 1 FROM webhook_events WHERE project_id = ${created.body.id} AND status = 'delivered'`).length === 1, 'delivered by the second replica', 30_000);
    expect(receiver.received.length).toBe(2);
    expect(receiver.received[1]!.id).toBe(receiver.received[0]!.id);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    const attempts = await db.sql<{ attempt: number; status: string }[]>`SELECT attempt, status FROM webhook_deliveries WHERE project_id = ${created.body.id} ORDER BY id`;
    expect(attempts).toEqual([{ attempt: 2, status: 'delivered' }]); // the killed attempt left no record, only its lease
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});
