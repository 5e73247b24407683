import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalProvider } from '../../src/providers/local.ts';
import { ProviderError, type ImageProvider } from '../../src/providers/provider.ts';
import { signHs256, supabaseLegacyKey } from '../fakes/jwks.ts';
import { sseReader } from '../support/sse.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/** Prometheus text to { 'name{labels}': value }, labels as the registry prints them. */
function parse(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

/**
 * The local renderer, except: "refuse" fails for good (content policy), and "busy" answers
 * 429 with a short Retry-After the first time, then draws.
 */
let release: () => void = () => {};
const held = new Promise<void>((resolve) => (release = resolve));

function scripted(): ImageProvider {
  const local = createLocalProvider({ delayMs: 0 });
  let busy = false;
  return {
    name: 'local',
    defaultModel: null,
    async generate(request) {
      if (request.prompt === 'hold') await held;
      if (request.prompt === 'refuse') throw new ProviderError('local', 'refused (test)', { transient: false, code: 'content_policy' });
      if (request.prompt === 'busy' && !busy) {
        busy = true;
        throw new ProviderError('local', 'slow down (test)', { transient: true, code: 'rate_limited', status: 429, retryAfterMs: 20 });
      }
      return local.generate(request);
    },
  };
}

describe('GET /metrics', () => {
  let t: TestApp;
  const SECRET = 'metrics-test-secret-long-enough';
  beforeAll(async () => {
    t = await startTestApp({ RETRY_BASE_MS: '10', MAX_ATTEMPTS: '3' }, { providers: new Map([['local', scripted()]]) });
  });
  afterAll(() => t?.close());

  async function scrape(app = t) {
    const res = await app.app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    return { values: parse(await res.text()), res };
  }

  it('after a run, its counts are the database’s and the run’s: slots, outcomes, calls, errors, retries, 429s, claims, requests', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'fine' }, { prompt: 'refuse' }, { prompt: 'busy' }], imagesPerScene: 2 });
    expect(created.status).toBe(202);
    const done = await t.waitForProject(created.body.id);
    expect(done.progress).toMatchObject({ succeeded: 4, failed: 2 });
    // The runner counts an image when its commit has returned, a moment after the database
    // shows it (the run can look done in between): scrape until all six are counted.
    const finished = (v: Map<string, number>) =>
      (v.get('sceneworks_images_finished_total{provider="local",outcome="succeeded"}') ?? 0) +
      (v.get('sceneworks_images_finished_total{provider="local",outcome="failed"}') ?? 0);
    let { values } = await scrape();
    for (const until = Date.now() + 10_000; finished(values) < 6 && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 20));
      ({ values } = await scrape());
    }

    const db = await t.db.sql<{ status: string; n: number }[]>`SELECT status, count(*)::int AS n FROM generated_images GROUP BY status`;
    const inDb = Object.fromEntries(db.map((r) => [r.status, r.n]));
    for (const status of ['queued', 'running', 'succeeded', 'failed']) expect(values.get(`sceneworks_slots{status="${status}"}`), status).toBe(inDb[status] ?? 0);
    expect(values.get('sceneworks_slots{status="succeeded"}')).toBe(4);

    expect(values.get('sceneworks_images_finished_total{provider="local",outcome="succeeded"}')).toBe(4);
    expect(values.get('sceneworks_images_finished_total{provider="local",outcome="failed"}')).toBe(2);
    expect(values.get('sceneworks_provider_errors_total{provider="local",code="content_policy"}')).toBe(2);
    expect(values.get('sceneworks_provider_errors_total{provider="local",code="rate_limited"}')).toBe(1);
    expect(values.get('sceneworks_provider_rate_limited_total{provider="local"}')).toBe(1);
    expect(values.get('sceneworks_provider_retries_total{provider="local"}')).toBe(1);
    // Every call is timed: 4 images, 2 refusals, 1 429.
    expect(values.get('sceneworks_provider_call_duration_seconds_count{provider="local",outcome="ok"}')).toBe(4);
    expect(values.get('sceneworks_provider_call_duration_seconds_count{provider="local",outcome="error"}')).toBe(3);
    // Six slots claimed, in however many statements.
    expect(values.get('sceneworks_claim_batch_size_sum')).toBe(6);
    expect(values.get('sceneworks_claim_batch_size_count')).toBeGreaterThanOrEqual(1);
    expect(values.get('sceneworks_http_requests_total{method="POST",route="/projects",status="202"}')).toBe(1);
    expect(values.get('sceneworks_http_requests_total{method="GET",route="/projects/:id",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(values.get('sceneworks_http_request_duration_seconds_count{method="POST",route="/projects",status="202"}')).toBe(1);
    expect(values.has('process_cpu_user_seconds_total')).toBe(true);
    expect(values.has('nodejs_heap_size_used_bytes')).toBe(true);
  });

  it('labels routes by pattern and never carries an id, a user or a path', async () => {
    await t.call('GET', '/nothing/at/all');
    const { res } = await scrape();
    const text = await (await t.app.request('/metrics')).text();
    expect(res.status).toBe(200);
    expect(text).toContain('sceneworks_http_requests_total{method="GET",route="unmatched",status="404"}');
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/);
    expect(text).not.toContain('/nothing/at/all');
  });

  it('counts event streams while they are open', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'hold' }] });
    const open = () => scrape().then(({ values }) => values.get('sceneworks_event_streams_open'));
    expect(await open()).toBe(0);
    const readers = [];
    for (let i = 0; i < 2; i++) {
      const reader = sseReader((await t.app.request(`/projects/${created.body.id}/events`)).body!);
      expect((await reader.next())?.event).toBe('progress');
      readers.push(reader);
    }
    expect(await open()).toBe(2);
    await readers[0]!.cancel(); // the client goes away
    await expect.poll(open).toBe(1);
    release();
    await t.waitForProject(created.body.id);
    await expect.poll(open).toBe(0); // the other closed itself after `done`
  });

  it('counts slots whose lease expired, by what became of them', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'fine' }] }).then((r) => r.body.id as string);
    await t.waitForProject(created);
    await t.db.sql`
      UPDATE generated_images SET status = 'running', locked_by = 'dead-worker', locked_until = now() - interval '1 minute', attempts = 1
      WHERE content_creation_request_id = ${created}`;
    t.deps.runner.wake();
    await t.waitForProject(created);
    expect((await scrape()).values.get('sceneworks_leases_expired_total{outcome="requeued"}')).toBe(1);
  });

  it('with METRICS_TOKEN: that bearer token and nothing else, whatever AUTH is', async () => {
    const guarded = await startTestApp({ METRICS_TOKEN: 'scrape-me-please-0123456789', AUTH: 'jwt', JWT_SECRET: SECRET }, { runner: false });
    try {
      expect((await guarded.app.request('/metrics')).status).toBe(401);
      const wrong = await guarded.app.request('/metrics', { headers: { authorization: 'Bearer scrape-me-please-012345678X' } });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toContain('Bearer');
      const operator = await supabaseLegacyKey(SECRET, 'service_role');
      expect((await guarded.app.request('/metrics', { headers: { authorization: `Bearer ${operator}` } })).status).toBe(401);
      const right = await guarded.app.request('/metrics', { headers: { authorization: 'Bearer scrape-me-please-0123456789' } });
      expect(right.status).toBe(200);
      expect(await right.text()).toContain('sceneworks_slots{status="queued"} 0');
    } finally {
      await guarded.close();
    }
  });

  it('without METRICS_TOKEN under AUTH=jwt: operators only (a user gets 403)', async () => {
    const jwt = await startTestApp({ AUTH: 'jwt', JWT_SECRET: SECRET }, { runner: false });
    try {
      expect((await jwt.app.request('/metrics')).status).toBe(401);
      const user = await signHs256(SECRET, { sub: crypto.randomUUID(), aud: 'authenticated', role: 'authenticated' });
      const forUser = await jwt.call('GET', '/metrics', undefined, { authorization: `Bearer ${user}` });
      expect(forUser.status).toBe(403);
      expect(forUser.body.error.code).toBe('FORBIDDEN');
      const operator = await supabaseLegacyKey(SECRET, 'service_role');
      expect((await jwt.app.request('/metrics', { headers: { authorization: `Bearer ${operator}` } })).status).toBe(200);
    } finally {
      await jwt.close();
    }
  });
});
