import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/gated-provider.ts';

let t: TestApp;
let projectId: string;
beforeAll(async () => {
  t = await startTestApp({ CORS_ORIGINS: 'https://app.example' }, { runner: false });
  projectId = (await t.call('POST', '/projects', { scenes: [{ prompt: 'p' }] })).body.id;
});
afterAll(() => t.close());

async function request(method: string, url: string, init: { body?: string; headers?: Record<string, string> } = {}) {
  const res = await t.app.request(url, { method, body: init.body, headers: init.headers ?? {} });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function generations(): Promise<number> {
  const [row] = await t.db.sql<{ g: number }[]>`SELECT max(generation)::int AS g FROM generated_images WHERE content_creation_request_id = ${projectId}`;
  return row!.g;
}

describe('cross-site requests', () => {
  it('a page of another origin cannot make a browser regenerate (text/plain, the no-preflight type): 403, nothing queued', async () => {
    const before = await generations();
    const res = await request('POST', `/projects/${projectId}/scenes/1/regenerate`, {
      body: '{"prompt":"spend their budget"}',
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('FORBIDDEN');
    expect(await generations()).toBe(before);
  });

  it('nor call a route that takes no body (generate), with or without a body, or a form', async () => {
    const evil = { origin: 'https://evil.example' };
    expect((await request('POST', `/projects/${projectId}/generate`, { headers: evil })).status).toBe(403);
    expect((await request('POST', `/projects/${projectId}/generate`, { body: 'x', headers: { ...evil, 'content-type': 'text/plain' } })).status).toBe(403);
    expect((await request('POST', '/projects', { body: 'scenes=1', headers: { ...evil, 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(403);
    // Sec-Fetch-Site alone (a browser that sent no Origin) says the same.
    expect((await request('POST', `/projects/${projectId}/generate`, { headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect((await request('POST', `/projects/${projectId}/generate`, { headers: { 'sec-fetch-site': 'same-site' } })).status).toBe(403);
  });

  it('a body that is not JSON is a 415 on every state-changing route, even without an Origin', async () => {
    for (const [path, body] of [
      [`/projects/${projectId}/generate`, 'x'],
      [`/projects/${projectId}/scenes/1/regenerate`, '{"prompt":"x"}'],
      ['/projects', '{"scenes":[{"prompt":"x"}]}'],
    ] as const) {
      const res = await request('POST', path, { body, headers: { 'content-type': 'text/plain' } });
      expect(res.status, path).toBe(415);
      expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect((await request('POST', `/projects/${projectId}/generate`, { body: '{"all":true}', headers: { 'content-type': 'application/json' } })).status).toBe(400);
  });

  it('the same origin, an origin listed in CORS_ORIGINS, and clients that are not browsers are served', async () => {
    expect((await request('POST', `/projects/${projectId}/generate`, { headers: { origin: 'http://localhost' } })).status).toBe(202);
    expect((await request('POST', `/projects/${projectId}/generate`, { headers: { origin: 'http://sceneworks.test' } })).status).toBe(202);
    expect((await request('POST', `/projects/${projectId}/generate`, { headers: { origin: 'https://app.example', 'sec-fetch-site': 'cross-site' } })).status).toBe(202);
    expect((await request('POST', `/projects/${projectId}/generate`, { headers: { 'sec-fetch-site': 'same-origin' } })).status).toBe(202);
    expect((await request('POST', `/projects/${projectId}/generate`)).status).toBe(202);
    expect((await request('POST', `/projects/${projectId}/generate`, { body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(202);
    // Reads are not state-changing: a page may embed images and links.
    expect((await request('GET', `/projects/${projectId}`, { headers: { origin: 'https://evil.example' } })).status).toBe(200);
  });
});

describe('DNS rebinding: bound to loopback, only our own host names are answered', () => {
  it('refuses a request naming another host, on every route', async () => {
    for (const path of ['/healthz', '/projects', `/projects/${projectId}`]) {
      const res = await request('GET', `http://evil.example:3000${path}`);
      expect(res.status, path).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
  });

  it('answers loopback names and the PUBLIC_BASE_URL host, with any port', async () => {
    for (const base of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000', 'http://sceneworks.test']) {
      expect((await request('GET', `${base}/projects/${projectId}`)).status, base).toBe(200);
    }
  });

  it('bound to every interface, any host is answered unless ALLOWED_HOSTS lists them', async () => {
    // (Without authentication, binding every interface needs ALLOW_UNAUTHENTICATED=true.)
    const lines: string[] = [];
    const open = await startTestApp(
      { HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true', LOG_LEVEL: 'warn' },
      { db: t.db, runner: false, logDestination: { write: (line: string) => void lines.push(line) } },
    );
    expect(lines.join('')).toContain('AUTH=none on a non-loopback address');
    const listed = await startTestApp({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true', ALLOWED_HOSTS: 'images.example' }, { db: t.db, runner: false });
    try {
      expect((await open.app.request('http://anything.example/healthz')).status).toBe(200);
      expect((await listed.app.request('http://anything.example/healthz')).status).toBe(403);
      expect((await listed.app.request('http://IMAGES.example/healthz')).status).toBe(200);
    } finally {
      await open.close();
      await listed.close();
    }
  });
});

describe('every state-changing route, listed from the app itself', () => {
  /**
   * Each state-changing route with real parameters and a body it accepts. The test fails when
   * the app has a state-changing route this table does not list, so a new route cannot be
   * forgotten here. Destructive routes come last: the same-origin requests at the end run in
   * this order.
   */
  type Fixture = { projectId: string; imageId: string; version: () => Promise<number> };
  const ROUTES: Record<string, (f: Fixture) => Promise<{ path: string; body?: string }>> = {
    'POST /projects': async () => ({ path: '/projects', body: '{"scenes":[{"prompt":"new"}]}' }),
    'POST /projects/:id/generate': async (f) => ({ path: `/projects/${f.projectId}/generate` }),
    'POST /projects/:id/scenes/:sceneIndex/regenerate': async (f) => ({ path: `/projects/${f.projectId}/scenes/1/regenerate`, body: '{"prompt":"spend"}' }),
    'PATCH /projects/:id/scenes/:sceneIndex': async (f) => ({ path: `/projects/${f.projectId}/scenes/1`, body: '{"narration":"edited"}' }),
    'PATCH /images/:id': async (f) => ({ path: `/images/${f.imageId}`, body: '{"favorite":true}' }),
    'POST /images/:id/versions/:version/restore': async (f) => ({ path: `/images/${f.imageId}/versions/${await f.version()}/restore` }),
    'DELETE /images/:id': async (f) => ({ path: `/images/${f.imageId}` }),
    'DELETE /projects/:id': async (f) => ({ path: `/projects/${f.projectId}` }),
  };

  let live: TestApp;
  let fixture: Fixture;
  beforeAll(async () => {
    // A generating app on the same database: the image routes need an image with a kept version.
    live = await startTestApp({ CORS_ORIGINS: 'https://app.example' }, { db: t.db });
    const id = (await live.call('POST', '/projects', { scenes: [{ prompt: 'first' }] })).body.id;
    await live.waitForProject(id);
    await live.call('POST', `/projects/${id}/scenes/1/regenerate`, { prompt: 'second' });
    const done = await live.waitForProject(id);
    const imageId = done.generatedOutput.scenes[0].images[0].id;
    const version = async () => (await live.call('GET', `/images/${imageId}/versions`)).body.items.find((v: any) => !v.current).version;
    fixture = { projectId: id, imageId, version };
    expect(await version()).toBeTypeOf('number');
  });
  afterAll(() => live.close());

  /** What any of these routes would change. */
  async function state(): Promise<string> {
    const rows = await t.db.sql`
      SELECT (SELECT count(*) FROM content_creation_requests)::int AS projects,
             (SELECT generated_output::text FROM content_creation_requests WHERE id = ${fixture.projectId}) AS output,
             (SELECT json_agg(json_build_object('id', id, 'status', status, 'generation', generation, 'favorite', favorite,
                                                'key', storage_key, 'version', version) ORDER BY id)
              FROM generated_images WHERE content_creation_request_id = ${fixture.projectId})::text AS images,
             (SELECT count(*) FROM image_versions WHERE content_creation_request_id = ${fixture.projectId})::int AS versions`;
    return JSON.stringify(rows);
  }

  it('the table lists exactly the state-changing routes of the app', () => {
    const changing = new Set(live.app.routes.filter((r) => !['GET', 'HEAD', 'OPTIONS', 'ALL'].includes(r.method)).map((r) => `${r.method} ${r.path}`));
    expect([...changing].sort()).toEqual(Object.keys(ROUTES).sort());
  });

  it('each refuses another origin, a body that is not JSON and a foreign Host before anything changes; the same origin is served', async () => {
    const json = { 'content-type': 'application/json' };
    const refusals: [string, string, Record<string, string>, number, string][] = [
      ['another origin, JSON', 'http://localhost', { ...json, origin: 'https://evil.example' }, 403, 'FORBIDDEN'],
      ['another origin, text/plain', 'http://localhost', { 'content-type': 'text/plain', origin: 'https://evil.example' }, 403, 'FORBIDDEN'],
      ['origin "null"', 'http://localhost', { ...json, origin: 'null' }, 403, 'FORBIDDEN'],
      ['Sec-Fetch-Site: cross-site, no Origin', 'http://localhost', { ...json, 'sec-fetch-site': 'cross-site' }, 403, 'FORBIDDEN'],
      ['a rebound host name', 'http://evil.example:3000', json, 403, 'FORBIDDEN'],
    ];
    for (const [method, route] of Object.entries(ROUTES).map(([key, make]) => [key.split(' ')[0]!, make] as const)) {
      const { path, body } = await route(fixture);
      const where = `${method} ${path}`;
      const cases = [...refusals];
      // Not JSON, with no Origin at all (a form or text/plain sends no preflight).
      cases.push(['text/plain, no Origin', 'http://localhost', { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE']);
      cases.push(['a form, no Origin', 'http://localhost', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'UNSUPPORTED_MEDIA_TYPE']);
      for (const [name, base, headers, status, code] of cases) {
        const before = await state();
        // Routes that take no body get one here: a page would send whatever it can.
        const res = await live.app.request(`${base}${path}`, { method, headers, body: body ?? '{"x":1}' });
        const answer = await res.json();
        expect(res.status, `${where}: ${name}`).toBe(status);
        expect(answer.error.code, `${where}: ${name}`).toBe(code);
        if (headers.origin || headers['sec-fetch-site'] || base !== 'http://localhost') {
          // And with no body at all, where the route has none: still refused.
          if (body === undefined) expect((await live.app.request(`${base}${path}`, { method, headers })).status, `${where}: ${name}, no body`).toBe(403);
        }
        expect(await state(), `${where}: ${name}`).toBe(before);
      }
    }
    // The same requests from this service's own pages are served: the refusals above were the guard's.
    for (const [key, route] of Object.entries(ROUTES)) {
      const { path, body } = await route(fixture);
      const res = await live.app.request(path, { method: key.split(' ')[0], headers: { ...json, origin: 'http://localhost' }, body });
      expect(res.status, key).toBeGreaterThanOrEqual(200);
      expect(res.status, key).toBeLessThan(300);
      await until(() => live.deps.runner.inFlight() === 0, 'the runner to be idle');
    }
  });
});
