import { randomUUID } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { onError } from '../../src/http/errors.ts';
import { requestContext } from '../../src/http/middleware.ts';
import { rateLimitWrites } from '../../src/http/rate-limit.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The middleware on a small app with the service's own request context and error handler, so
 * every error body is the contract's. The limit's arithmetic is tested in test/db.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

/** The caller's key comes from a test header; no header: a caller the limit does not apply to. */
function appWith(perMinute: number) {
  const app = new OpenAPIHono<AppEnv>();
  app.use(requestContext(createLogger('silent')));
  app.use(rateLimitWrites({ sql: db.sql, perMinute, keyOf: (c) => c.req.header('x-test-owner') ?? null }));
  app.get('/things', (c) => c.json({ items: [] }));
  app.post('/things', (c) => c.json({ ok: true }, 201));
  app.patch('/things', (c) => c.json({ ok: true }));
  app.delete('/things', (c) => c.body(null, 204));
  app.post('/raw', () => new Response('made without the context', { status: 201 }));
  app.post('/refused-later', () => {
    throw new AppError('VALIDATION_FAILED', 'refused by the route');
  });
  app.onError(onError);
  return app;
}

const owner = () => ({ 'x-test-owner': `owner:${randomUUID()}` });

/** One Item of a Structured Field List as draft-ietf-httpapi-ratelimit-headers-11 has it: a String and Integer parameters. */
function parseItem(field: string | null): { name: string; params: Record<string, number> } {
  const match = /^"([^"\\]*)"((?:;[a-z*][a-z0-9_.*-]*=\d{1,15})+)$/.exec(field ?? '');
  if (!match) throw new Error(`not a String Item with Integer parameters: ${field}`);
  const params = Object.fromEntries(match[2]!.slice(1).split(';').map((p) => p.split('=') as [string, string]).map(([k, v]) => [k, Number(v)]));
  return { name: match[1]!, params };
}

async function exhaust(app: ReturnType<typeof appWith>, headers: Record<string, string>, n: number) {
  for (let i = 0; i < n; i++) expect((await app.request('/things', { method: 'POST', headers })).status).toBe(201);
}

describe('rateLimitWrites', () => {
  it('a refused write is a 429 with the contract body, Retry-After and the RateLimit fields', async () => {
    const app = appWith(3);
    const headers = { ...owner(), 'x-request-id': 'rl-test-1' };
    await exhaust(app, headers, 3);
    const res = await app.request('/things', { method: 'POST', headers });
    expect(res.status).toBe(429);
    const body = await res.json();
    expect(body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.any(String), requestId: 'rl-test-1', details: [] } });
    expect(res.headers.get('x-request-id')).toBe('rl-test-1');

    const retryAfter = res.headers.get('retry-after');
    expect(retryAfter).toMatch(/^[1-9]\d*$/);
    const policy = parseItem(res.headers.get('ratelimit-policy'));
    const limit = parseItem(res.headers.get('ratelimit'));
    expect(policy).toEqual({ name: 'writes', params: { q: 3, w: 60 } });
    expect(limit.name).toBe(policy.name);
    expect(Object.keys(limit.params)).toEqual(['r', 't']);
    expect(limit.params.r).toBe(0);
    // -11: Retry-After SHOULD NOT point before the end of the effective window.
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(limit.params.t!);
    expect(limit.params.t).toBeGreaterThanOrEqual(1);
  });

  it('every write it allows carries both fields, the available quota counting down', async () => {
    const app = appWith(3);
    const headers = owner();
    const seen = [];
    for (const method of ['POST', 'PATCH', 'DELETE']) {
      const res = await app.request('/things', { method, headers });
      expect(res.status).toBeLessThan(300);
      expect(res.headers.get('retry-after')).toBeNull();
      expect(parseItem(res.headers.get('ratelimit-policy'))).toEqual({ name: 'writes', params: { q: 3, w: 60 } });
      seen.push(parseItem(res.headers.get('ratelimit')).params.r);
    }
    expect(seen).toEqual([2, 1, 0]);
  });

  it('keeps the fields on a response a route made without the context', async () => {
    const res = await appWith(3).request('/raw', { method: 'POST', headers: owner() });
    expect(res.status).toBe(201);
    expect(parseItem(res.headers.get('ratelimit')).params.r).toBe(2);
    expect(res.headers.get('ratelimit-policy')).not.toBeNull();
  });

  it('keeps the fields on an error a route throws after the write was counted', async () => {
    const res = await appWith(3).request('/refused-later', { method: 'POST', headers: owner() });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('VALIDATION_FAILED');
    expect(parseItem(res.headers.get('ratelimit')).params.r).toBe(2);
  });

  it('never limits reads (GET, HEAD) or preflights (OPTIONS), and adds no fields to them', async () => {
    const app = appWith(2);
    const headers = owner();
    await exhaust(app, headers, 2);
    expect((await app.request('/things', { method: 'POST', headers })).status).toBe(429);
    for (const method of ['GET', 'HEAD', 'OPTIONS']) {
      for (let i = 0; i < 3; i++) {
        const res = await app.request('/things', { method, headers });
        expect(res.status, method).not.toBe(429);
        expect(res.headers.get('ratelimit'), method).toBeNull();
      }
    }
  });

  it('perMinute 0 turns it off: no refusal, no fields, no state', async () => {
    const app = appWith(0);
    const headers = owner();
    for (let i = 0; i < 5; i++) {
      const res = await app.request('/things', { method: 'POST', headers });
      expect(res.status).toBe(201);
      expect(res.headers.get('ratelimit')).toBeNull();
    }
    const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM owner_rate_limits WHERE key = ${headers['x-test-owner']}`;
    expect(row!.n).toBe(0);
  });

  it('a caller without a key is not limited', async () => {
    const app = appWith(1);
    for (let i = 0; i < 3; i++) {
      const res = await app.request('/things', { method: 'POST' });
      expect(res.status).toBe(201);
      expect(res.headers.get('ratelimit')).toBeNull();
    }
  });

  it("one owner's refusals leave another's writes alone", async () => {
    const app = appWith(1);
    const a = owner();
    await exhaust(app, a, 1);
    expect((await app.request('/things', { method: 'POST', headers: a })).status).toBe(429);
    expect((await app.request('/things', { method: 'POST', headers: owner() })).status).toBe(201);
  });
});
