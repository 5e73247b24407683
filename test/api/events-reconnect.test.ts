import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/gated-provider.ts';
import { sseReader } from '../support/sse.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({}, { runner: false });
});
afterAll(() => t.close());

describe('event streams across a lost LISTEN connection', () => {
  it('a change made while the listener was away (never notified) reaches the client once it is back', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'p' }], imagesPerScene: 2 });
    const id = created.body.id;
    const res = await t.app.request(`/projects/${id}/events`);
    expect(res.status).toBe(200);
    const events = sseReader(res.body!);
    expect((await events.next())?.event).toBe('progress');
    // The first images (both queued) arrive; then nothing changes until we change it.
    const first = [await events.next(), await events.next()];
    expect(first.map((e) => e?.event)).toEqual(['image', 'image']);

    // This database is this file's own: silence the notify triggers, so the change below is
    // never notified and only a re-read after the reconnect can reveal it.
    await t.db.sql`ALTER TABLE generated_images DISABLE TRIGGER USER`;
    try {
      await t.db.sql`UPDATE generated_images SET status = 'failed', error = 'changed while away', updated_at = now()
                     WHERE content_creation_request_id = ${id} AND image_index = 0`;
      const listeners = () => t.db.sql<{ pid: number }[]>`
        SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen %' AND pid <> pg_backend_pid()`;
      await until(async () => (await listeners()).length > 0, 'the LISTEN connection to exist');
      const [listener] = await listeners();
      await t.db.sql`SELECT pg_terminate_backend(${listener!.pid})`;

      const next = await Promise.race([events.next(), new Promise<'nothing'>((r) => setTimeout(() => r('nothing'), 15_000))]);
      expect(next).toMatchObject({ event: 'image', data: { imageIndex: 0, status: 'failed', error: 'changed while away' } });
    } finally {
      await t.db.sql`ALTER TABLE generated_images ENABLE TRIGGER USER`;
      await events.cancel();
    }
  });
});
