import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { claimWebhookEvents, recordWebhookAttempt } from '../../src/db/webhooks.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

it('an attempt is recorded only by the deliverer that still holds the event: a stale one changes nothing', async () => {
  const id = randomUUID();
  await db.sql`INSERT INTO webhook_events (id, project_id, type, url, payload) VALUES (${id}, ${randomUUID()}, 'project.finished', 'http://x', '{}')`;
  const [stale] = await claimWebhookEvents(db.sql, 'a', 10, 10_000);
  expect(stale).toMatchObject({ id, attempts: 1 });
  // A's lease runs out (it hung); B claims the event again.
  await db.sql`UPDATE webhook_events SET locked_until = now() - interval '1 second' WHERE id = ${id}`;
  const [current] = await claimWebhookEvents(db.sql, 'b', 10, 10_000);
  expect(current).toMatchObject({ id, attempts: 2 });
  expect(await recordWebhookAttempt(db.sql, 'a', stale!, { kind: 'gone', responseStatus: 410 }, 5)).toBe(false);
  const [after] = await db.sql<{ status: string; lockedBy: string }[]>`SELECT status, locked_by FROM webhook_events WHERE id = ${id}`;
  expect(after).toEqual({ status: 'pending', lockedBy: 'b' });
  expect(await db.sql`SELECT 1 FROM webhook_deliveries WHERE event_id = ${id}`).toHaveLength(0);
  expect(await recordWebhookAttempt(db.sql, 'b', current!, { kind: 'delivered', responseStatus: 200 }, 5)).toBe(true);
  const [done] = await db.sql<{ status: string }[]>`SELECT status FROM webhook_events WHERE id = ${id}`;
  expect(done!.status).toBe('delivered');
});
