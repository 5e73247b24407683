import { randomUUID } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { onError } from '../../src/http/errors.ts';
import { requestContext } from '../../src/http/middleware.ts';
import { rateLimitWrites } from '../../src/http/rate-limit.ts';
import { createLogger } from '../../src/log.ts';
import { signHs256, supabaseUserClaims } from '../fakes/jwks.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
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

/**
 * The service itself: every route that changes something is a write, whichever it is and
 * whenever it was added (the routes come from the app), and a refused write does nothing.
 */
describe('RATE_LIMIT_PER_MIN on the service: every write route', () => {
  const SECRET = 'a-legacy-jwt-secret-of-at-least-32-chars';
  /** The writes the contract has today; the app may have more, never fewer. */
  const KNOWN_WRITES = [
    'POST /projects',
    'POST /projects/:id/generate',
    'POST /projects/:id/scenes/:sceneIndex/regenerate',
    'PATCH /projects/:id/scenes/:sceneIndex',
    'DELETE /projects/:id',
    'PATCH /images/:id',
    'DELETE /images/:id',
    'POST /images/:id/versions/:version/restore',
  ];
  /** A body each route would accept; routes that take none get none. */
  const BODIES: Record<string, unknown> = {
    'POST /projects': { scenes: [{ prompt: 'another' }] },
    'POST /projects/:id/scenes/:sceneIndex/regenerate': { prompt: 'again' },
    'PATCH /projects/:id/scenes/:sceneIndex': { prompt: 'edited' },
    'PATCH /images/:id': { favorite: true },
  };
  let u: TestApp;
  const bearer = async (sub: string) => ({ authorization: `Bearer ${await signHs256(SECRET, supabaseUserClaims({ sub }))}` });
  beforeAll(async () => {
    u = await startTestApp({ AUTH: 'jwt', JWT_SECRET: SECRET, STORAGE_PUBLIC: 'true', RATE_LIMIT_PER_MIN: '10' }, { db });
  });
  afterAll(() => u?.close());

  const writeRoutes = () => [
    ...new Set(u.app.routes.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)).map((r) => `${r.method} ${r.path}`)),
  ];
  /** The route aimed at a project and an image (with scene 1 and version `version`). */
  const callOf = (route: string, ids: { project: string; image: string; version: number }) => {
    const [method, pattern] = route.split(' ') as [string, string];
    const path = pattern
      .replace(':id', pattern.startsWith('/images/') ? ids.image : ids.project)
      .replace(':sceneIndex', '1')
      .replace(':version', String(ids.version));
    return { method, path, body: BODIES[route] };
  };
  const tatOf = async (owner: string) =>
    (await db.sql<{ us: number }[]>`SELECT (extract(epoch FROM tat) * 1000000)::float8 AS us FROM owner_rate_limits WHERE key = ${owner}`)[0]?.us ?? null;

  async function settled(projectId: string, headers: Record<string, string>) {
    for (let i = 0; i < 600; i++) {
      const res = await u.call('GET', `/projects/${projectId}`, undefined, headers);
      expect(res.status).toBe(200);
      if (!['queued', 'running'].includes(res.body.status)) return res.body;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`project ${projectId} never finished`);
  }

  it('every POST, PATCH and DELETE route counts one write, whatever it answers', async () => {
    const routes = writeRoutes();
    expect(routes).toEqual(expect.arrayContaining(KNOWN_WRITES));
    const owner = randomUUID();
    const headers = await bearer(owner);
    const ids = { project: randomUUID(), image: randomUUID(), version: 1 };
    let before = await tatOf(owner);
    for (const route of routes) {
      // POST /projects would make a project: aim it at nothing too (an empty body, a 400).
      const call = route === 'POST /projects' ? { ...callOf(route, ids), body: {} } : callOf(route, ids);
      const res = await u.call(call.method, call.path, call.body, headers);
      expect(res.status, route).not.toBe(429);
      expect(res.headers.get('ratelimit-policy'), route).toBe('"writes";q=10;w=60');
      expect(res.headers.get('ratelimit'), route).toMatch(/^"writes";r=\d+;t=\d+$/);
      // The owner's limiter state moved by one write: each allowed take pushes tat forward.
      const after = await tatOf(owner);
      expect(after, route).not.toBeNull();
      if (before !== null) expect(after!, route).toBeGreaterThan(before);
      before = after;
    }
  });

  it('past the limit every write route is a 429 RATE_LIMITED and changes nothing; reads still work', async () => {
    const owner = randomUUID();
    const headers = await bearer(owner);
    const created = await u.call('POST', '/projects', { scenes: [{ prompt: 'kept as it is' }] }, headers);
    expect(created.status).toBe(202);
    const project = created.body.id as string;
    await settled(project, headers);
    // A regenerate, so the image has a kept version to restore.
    expect((await u.call('POST', `/projects/${project}/scenes/1/regenerate`, { prompt: 'second' }, headers)).status).toBe(202);
    const done = await settled(project, headers);
    const image = done.generatedOutput.scenes[0].images[0].id as string;
    const [kept] = await db.sql<{ version: number }[]>`SELECT version FROM image_versions WHERE content_creation_request_id = ${project}`;
    expect(kept).toBeDefined();

    // Used up for a long while: time is moved, not waited for.
    await db.sql`UPDATE owner_rate_limits SET tat = clock_timestamp() + interval '1 hour' WHERE key = ${owner}`;
    const snapshot = async () => ({
      projects: await db.sql`SELECT id, generated_output, settings, updated_at FROM content_creation_requests WHERE user_id = ${owner} ORDER BY id`,
      images: await db.sql`SELECT id, status, generation, favorite, storage_key, prompt FROM generated_images WHERE owner_id = ${owner} ORDER BY id`,
      versions: await db.sql`SELECT id, version, storage_key FROM image_versions WHERE content_creation_request_id = ${project} ORDER BY id`,
    });
    const before = await snapshot();
    expect(before.images).toHaveLength(1);

    for (const route of writeRoutes()) {
      const call = callOf(route, { project, image, version: kept!.version });
      const res = await u.call(call.method, call.path, call.body, headers);
      expect(res.status, route).toBe(429);
      expect(res.body.error.code, route).toBe('RATE_LIMITED');
      expect(Number(res.headers.get('retry-after')), route).toBeGreaterThan(0);
      expect(res.headers.get('ratelimit'), route).toMatch(/^"writes";r=0;t=\d+$/);
    }
    expect(await snapshot()).toEqual(before);
    expect((await u.call('GET', `/projects/${project}`, undefined, headers)).status).toBe(200);
    expect((await u.call('GET', `/images/${image}`, undefined, headers)).status).toBe(200);
  });
});
