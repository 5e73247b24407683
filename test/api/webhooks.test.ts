import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalProvider } from '../../src/providers/local.ts';
import { ProviderError, type ImageProvider } from '../../src/providers/provider.ts';
import { startWebhookReceiver } from '../fakes/webhook-receiver.ts';
import { until } from '../support/gated-provider.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

const SECRET = `whsec_${Buffer.from('sceneworks-webhook-test-secret!!').toString('base64')}`;

function refusing(): ImageProvider {
  const local = createLocalProvider({ delayMs: 0 });
  return {
    name: 'local',
    defaultModel: null,
    async generate(request) {
      if (request.prompt.startsWith('refuse')) throw new ProviderError('local', 'refused (test)', { transient: false, code: 'content_policy' });
      return local.generate(request);
    },
  };
}

describe('webhooks', () => {
  let t: TestApp;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const env = {
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_POLL_MS: '20',
    WEBHOOK_RETRY_SCHEDULE_S: '0.05,0.05,0.05',
    WEBHOOK_TIMEOUT_MS: '300',
  };
  beforeAll(async () => {
    receiver = await startWebhookReceiver(SECRET);
    t = await startTestApp(env, { providers: new Map([['local', refusing()]]) });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const of = (projectId: string) => receiver.received.filter((r) => r.data.projectId === projectId);
  const deliveries = async (projectId: string) => (await t.call('GET', `/projects/${projectId}/webhook-deliveries`)).body.items as any[];
  async function project(scenes: string[], events?: string[]): Promise<string> {
    const res = await t.call('POST', '/projects', { scenes: scenes.map((prompt) => ({ prompt })), aspectRatio: '1:1', webhook: { url: receiver.url, ...(events ? { events } : {}) } });
    expect(res.status).toBe(202);
    return res.body.id;
  }

  it('tells the app of every image and of the finish, signed (verified with the official package); every attempt is listed', async () => {
    const id = await project(['a harbor', 'refuse this one']);
    await until(() => of(id).length === 3, 'three events delivered');
    const events = of(id);
    expect(events.every((e) => e.verified)).toBe(true);
    expect(events.map((e) => e.type).sort()).toEqual(['image.failed', 'image.succeeded', 'project.finished']);
    expect(events.find((e) => e.type === 'project.finished')!.data).toMatchObject({ projectId: id, status: 'partial', progress: { total: 2, succeeded: 1, failed: 1 } });
    const succeeded = events.find((e) => e.type === 'image.succeeded')!.data;
    expect(succeeded).toMatchObject({ projectId: id, sceneIndex: 1, imageIndex: 0, image: { status: 'succeeded', width: 1024, height: 1024, provider: 'local' } });
    expect(succeeded.image.url).toMatch(/^http/);
    expect(events.find((e) => e.type === 'image.failed')!.data.image).toMatchObject({ status: 'failed', error: 'refused (test)' });
    expect(new Set(events.map((e) => e.id)).size).toBe(3);
    for (const e of events) {
      expect(e.headers['webhook-timestamp']).toMatch(/^\d{10}$/);
      expect(e.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    }
    await until(async () => (await deliveries(id)).length === 3, 'three attempts recorded');
    const listed = await deliveries(id);
    expect(listed.every((d) => d.status === 'delivered' && d.responseStatus === 200 && d.attempt === 1 && d.error === null)).toBe(true);
    expect(new Set(listed.map((d) => d.eventId))).toEqual(new Set(events.map((e) => e.id)));
    const metrics = await (await t.app.request('/metrics')).text();
    expect(Number(/sceneworks_webhook_deliveries_total\{outcome="delivered"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
  });

  it('retries a 500 and a timeout with the same webhook-id, waits out a Retry-After, stops for good at a 410', async () => {
    receiver.script.push(500, 'hang', { status: 429, retryAfterS: 1 });
    const id = await project(['retried'], ['project.finished']);
    await until(() => of(id).length === 4, 'four attempts of one event', 20_000);
    const attempts = of(id);
    expect(new Set(attempts.map((a) => a.id)).size).toBe(1);
    expect(attempts[3]!.at - attempts[2]!.at).toBeGreaterThanOrEqual(950); // the Retry-After, not the 50 ms schedule
    await until(async () => (await deliveries(id)).length === 4, 'four attempts recorded');
    expect((await deliveries(id)).map((d) => [d.status, d.responseStatus, d.error])).toEqual([
      ['failed', 500, 'HTTP 500'],
      ['failed', null, 'no answer within 300 ms'],
      ['failed', 429, 'HTTP 429'],
      ['delivered', 200, null],
    ]);

    receiver.script.push(410);
    const gone = await project(['gone'], ['project.finished']);
    await until(async () => (await deliveries(gone)).length === 1, 'the 410 recorded');
    await new Promise((r) => setTimeout(r, 300)); // several schedules' worth: nothing more comes
    expect(of(gone)).toHaveLength(1);
    expect((await deliveries(gone))[0]).toMatchObject({ status: 'gone', responseStatus: 410 });
  });

  it('gives up when the schedule runs out, with every attempt recorded', async () => {
    receiver.script.push(503, 503, 503, 503);
    const id = await project(['never reachable'], ['project.finished']);
    await until(async () => (await deliveries(id)).length === 4, 'four attempts recorded', 20_000);
    const [event] = await t.db.sql<{ status: string; attempts: number }[]>`SELECT status, attempts FROM webhook_events WHERE project_id = ${id}`;
    expect(event).toEqual({ status: 'failed', attempts: 4 });
  });

  it('sends project.deleted after a delete', async () => {
    const id = await project(['to delete'], ['project.deleted']);
    await t.waitForProject(id);
    expect((await t.call('DELETE', `/projects/${id}`)).status).toBe(204);
    await until(() => of(id).length === 1, 'project.deleted delivered');
    expect(of(id)[0]).toMatchObject({ type: 'project.deleted', data: { projectId: id }, verified: true });
  });

  it('writes an event with the change that causes it: none for a change rolled back, one for any statement that commits it', async () => {
    const held = await t.call('POST', '/projects', { scenes: [{ prompt: 'held' }], webhook: { url: receiver.url, events: ['image.failed'] } });
    const id = held.body.id as string;
    await t.waitForProject(id);
    const events = () => t.db.sql<{ type: string }[]>`SELECT type FROM webhook_events WHERE project_id = ${id}`;
    await t.db.sql`UPDATE generated_images SET status = 'running' WHERE content_creation_request_id = ${id}`;
    await t.db.sql
      .begin(async (tx) => {
        await tx`UPDATE generated_images SET status = 'failed', error = 'x' WHERE content_creation_request_id = ${id}`;
        throw new Error('roll back');
      })
      .catch(() => {});
    expect(await events()).toEqual([]);
    await t.db.sql`UPDATE generated_images SET status = 'failed', error = 'by hand' WHERE content_creation_request_id = ${id}`;
    expect(await events()).toEqual([{ type: 'image.failed' }]);
  });

  it('re-sends, with the same id, an event whose deliverer died mid-delivery', async () => {
    const id = await project(['orphaned delivery'], ['project.finished']);
    await t.waitForProject(id);
    await until(() => of(id).length === 1, 'first delivery');
    // What a deliverer killed after sending and before recording leaves behind.
    await t.db.sql`
      UPDATE webhook_events SET status = 'pending', locked_by = 'dead-deliverer', locked_until = now() - interval '1 second', attempts = 1
      WHERE project_id = ${id}`;
    await until(() => of(id).length === 2, 'sent again');
    expect(of(id)[1]!.id).toBe(of(id)[0]!.id);
  });

  it('refuses to create a webhook that cannot work: not http(s), or no WEBHOOK_SECRET on this service', async () => {
    const ftp = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], webhook: { url: 'ftp://example.test/x' } });
    expect(ftp.status).toBe(400);
    expect(ftp.body.error.details[0].path).toEqual(['webhook', 'url']);
    const unknown = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], webhook: { url: receiver.url, events: ['image.sold'] } });
    expect(unknown.status).toBe(400);
    const plain = await startTestApp({}, { runner: false });
    try {
      const res = await plain.call('POST', '/projects', { scenes: [{ prompt: 'x' }], webhook: { url: 'https://example.test/hooks' } });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain('WEBHOOK_SECRET');
    } finally {
      await plain.close();
    }
  });
});

describe('webhooks to private addresses', () => {
  it('are refused unless WEBHOOK_ALLOW_PRIVATE, and the receiver hears nothing', async () => {
    const receiver = await startWebhookReceiver(SECRET);
    const t = await startTestApp({ WEBHOOK_SECRET: SECRET, WEBHOOK_POLL_MS: '20', WEBHOOK_RETRY_SCHEDULE_S: '0.05' });
    try {
      const res = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], webhook: { url: receiver.url, events: ['project.finished'] } });
      await t.waitForProject(res.body.id);
      await until(async () => (await t.call('GET', `/projects/${res.body.id}/webhook-deliveries`)).body.items.length === 1, 'the refusal recorded');
      const [attempt] = (await t.call('GET', `/projects/${res.body.id}/webhook-deliveries`)).body.items;
      expect(attempt).toMatchObject({ status: 'failed', responseStatus: null });
      expect(attempt.error).toContain('127.0.0.1');
      const [event] = await t.db.sql<{ status: string }[]>`SELECT status FROM webhook_events WHERE project_id = ${res.body.id}`;
      expect(event!.status).toBe('failed'); // no retry can change where it points
      expect(receiver.received).toEqual([]);
    } finally {
      await t.close();
      await receiver.close();
    }
  });
});

describe('two deliverers on one database', () => {
  it('share the events and never send one twice', async () => {
    const receiver = await startWebhookReceiver(SECRET);
    const env = { WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_POLL_MS: '10', WEBHOOK_CONCURRENCY: '3' };
    const a = await startTestApp(env);
    const b = await startTestApp(env, { db: a.db });
    try {
      const res = await a.call('POST', '/projects', { scenes: Array.from({ length: 15 }, (_, i) => ({ prompt: `shared ${i}` })), imagesPerScene: 2, aspectRatio: '1:1', webhook: { url: receiver.url, events: ['image.succeeded'] } });
      await a.waitForProject(res.body.id);
      await until(() => receiver.received.length >= 30, 'thirty events delivered', 20_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(receiver.received).toHaveLength(30);
      expect(new Set(receiver.received.map((r) => r.id)).size).toBe(30);
      const byDeliverer = await a.db.sql<{ n: number }[]>`SELECT count(DISTINCT event_id)::int AS n FROM webhook_deliveries WHERE project_id = ${res.body.id}`;
      expect(byDeliverer[0]!.n).toBe(30);
    } finally {
      await b.close();
      await a.close();
      await receiver.close();
    }
  });
});
