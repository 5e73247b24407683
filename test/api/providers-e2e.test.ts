import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.ts';

/**
 * The whole service (HTTP, runner, retries, store, database) against a fake OpenAI that
 * answers with scripted faults: every slot must end succeeded, or failed with the
 * provider's reason, and the runner must make exactly the calls its policy says.
 */
let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI({ retryAfterSeconds: 1 });
});
afterAll(() => fake.close());

async function service(env: Record<string, string> = {}) {
  return startTestApp({
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    IMAGE_PROVIDER: 'openai',
    MAX_ATTEMPTS: '3',
    RETRY_BASE_MS: '20',
    PROVIDER_TIMEOUT_MS: '1000',
    ...env,
  });
}

async function rows(t: TestApp, projectId: string) {
  return t.db.sql<{ imageIndex: number; status: string; attempts: number; error: string | null; details: { errorCode?: string }; providerRequestId: string | null; width: number | null }[]>`
    SELECT image_index, status, attempts, error, details, provider_request_id, width FROM generated_images
    WHERE content_creation_request_id = ${projectId} ORDER BY image_index`;
}

describe('each fault, through the whole service', () => {
  // [faults the provider answers, in order], final status, provider calls, recorded error code
  const scenarios: [string, Parameters<FakeOpenAI['script']>, 'succeeded' | 'failed', number, string | null][] = [
    ['500 then 503 then ok: retried, succeeds', ['server_error', 'unavailable', 'ok'], 'succeeded', 3, null],
    ['content policy: fails at once', ['content_policy'], 'failed', 1, 'content_policy'],
    ['a hang past the timeout, then garbage, then ok', ['hang', 'malformed', 'ok'], 'succeeded', 3, null],
    ['500 three times: fails after MAX_ATTEMPTS', ['server_error', 'server_error', 'server_error'], 'failed', 3, 'server'],
    ['429 with Retry-After, then ok', ['rate_limit', 'ok'], 'succeeded', 2, null],
    ['a bad key: fails at once', ['bad_key'], 'failed', 1, 'auth'],
    ['an output URL that 404s, then ok', ['url_404', 'ok'], 'succeeded', 2, null],
  ];
  let t: TestApp;
  beforeAll(async () => {
    t = await service({ GENERATION_CONCURRENCY: '1', OPENAI_MODEL: 'dall-e-3' });
  });
  afterAll(() => t.close());

  for (const [name, faults, status, calls, code] of scenarios) {
    it(name, async () => {
      fake.reset();
      fake.script(...faults);
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'a lighthouse in a storm' }], aspectRatio: '16:9' });
      const done = await t.waitForProject(created.body.id, 30_000);
      const [row] = await rows(t, done.id);
      expect(row!.status).toBe(status);
      expect(fake.requests).toHaveLength(calls);
      expect(row!.attempts).toBe(calls);
      expect(row!.details.errorCode ?? null).toBe(code);
      if (status === 'failed') {
        expect(row!.error).toMatch(/^openai \d{3}: .+/);
        expect(done.generatedOutput.scenes[0].images[0]).toMatchObject({ status: 'failed', error: row!.error });
      } else {
        expect(row!.width).toBe(1792); // dall-e-3 landscape, probed from the bytes
        expect(row!.providerRequestId).toMatch(/.+/);
      }
    });
  }
});

describe('a project with mixed faults', () => {
  it('ends with every slot succeeded or failed with its reason, none stuck; generate retries exactly the failed ones', async () => {
    const t = await service({ GENERATION_CONCURRENCY: '4' });
    try {
      fake.reset();
      fake.script('server_error', 'content_policy', 'unavailable', 'hang', 'malformed', 'bad_key', 'rate_limit', 'server_error', 'url_404', 'content_policy');
      const created = await t.call('POST', '/projects', { scenes: Array.from({ length: 6 }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene: 2 });
      const done = await t.waitForProject(created.body.id, 60_000);
      const all = await t.db.sql<{ status: string; attempts: number; error: string | null }[]>`
        SELECT status, attempts, error FROM generated_images WHERE content_creation_request_id = ${done.id}`;
      expect(all).toHaveLength(12);
      for (const r of all) {
        expect(['succeeded', 'failed']).toContain(r.status);
        if (r.status === 'failed') expect(r.error).toMatch(/^openai \d{3}: .+/);
      }
      const failed = all.filter((r) => r.status === 'failed').length;
      expect(failed).toBe(3); // two content-policy refusals and the bad key: the only permanent faults
      expect(all.reduce((n, r) => n + r.attempts, 0)).toBe(fake.requests.length);
      expect(done.progress).toMatchObject({ total: 12, succeeded: 9, failed: 3 });

      fake.reset();
      await t.call('POST', `/projects/${done.id}/generate`);
      expect((await t.waitForProject(done.id, 60_000)).status).toBe('completed');
      expect(fake.requests).toHaveLength(3);
    } finally {
      await t.close();
    }
  });

  it("the slot told to wait by a 429 waits its Retry-After (1 s here), not the backoff's 20 ms", async () => {
    const t = await service();
    try {
      fake.reset();
      fake.script('rate_limit', 'ok');
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'patient' }] });
      expect((await t.waitForProject(created.body.id, 60_000)).status).toBe('completed');
      expect(fake.requests).toHaveLength(2);
      // The retry leaves after the 429's answer plus Retry-After: at least 1 s after the first arrived.
      expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(990);
    } finally {
      await t.close();
    }
  });

  it('a 429 pauses the provider for the whole process for its Retry-After', async () => {
    const t = await service({ GENERATION_CONCURRENCY: '4' });
    try {
      fake.reset();
      fake.script('rate_limit');
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'crowd' }], imagesPerScene: 8 });
      const done = await t.waitForProject(created.body.id, 60_000);
      expect(done.status).toBe('completed');
      const limited = fake.requests.find((r, i) => i === 0)!;
      // Requests already on the wire when the 429 came back may land; none may START in the
      // pause (1 s from the 429 answer): allow what was in flight at that moment (< 4).
      const duringPause = fake.requests.filter((r) => r.at > limited.at + 100 && r.at < limited.at + 900);
      expect(duringPause).toHaveLength(0);
      expect(fake.requests).toHaveLength(9);
    } finally {
      await t.close();
    }
  });
});

describe('provider selection', () => {
  it('refuses a project naming an unconfigured provider, naming the configured ones', async () => {
    const t = await service();
    try {
      const res = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], provider: 'gemini' });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toContain('configured: local, openai');
      const ok = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], provider: 'local' });
      expect(ok.status).toBe(202);
      expect(ok.body.settings.provider).toBe('local');
    } finally {
      await t.close();
    }
  });
});
