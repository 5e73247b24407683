import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

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
