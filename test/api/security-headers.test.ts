import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { errorResponse, onError } from '../../src/http/errors.ts';
import { requestGuards } from '../../src/http/guards.ts';
import { requestContext } from '../../src/http/middleware.ts';
import { docsRoutes } from '../../src/http/routes/docs.ts';
import { fileRoutes } from '../../src/http/routes/files.ts';
import { corsPolicy, securityHeaders } from '../../src/http/security.ts';
import { createLogger } from '../../src/log.ts';
import { createLocalStore } from '../../src/storage/local.ts';
import { randomUUID } from 'node:crypto';
import { signHs256, supabaseUserClaims } from '../fakes/jwks.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * The middlewares as app.ts mounts them, around real routes (the API reference, the local
 * store's files) and answers of every kind: JSON, an error from each middleware, a thrown bug.
 */
const KEY = 'projects/p1/scene-1/image-0.png';
const LISTED = 'https://app.example';
const dir = mkdtempSync(path.join(tmpdir(), 'sceneworks-security-'));
const store = createLocalStore({ root: dir, publicBaseUrl: 'http://sceneworks.test' });

function appWith(corsOrigins: string[]) {
  const app = new Hono<AppEnv>();
  app.use(requestContext(createLogger('silent')));
  app.use(securityHeaders());
  app.use(corsPolicy(corsOrigins));
  app.use(bodyLimit({ maxSize: 100, onError: (c) => errorResponse(c, new AppError('PAYLOAD_TOO_LARGE', 'too large')) }));
  app.use(requestGuards({ listenHost: '127.0.0.1', publicBaseUrl: 'http://sceneworks.test', allowedHosts: [], trustedOrigins: corsOrigins }));
  app.get('/thing', (c) => c.json({ ok: true }, 200, { etag: '"1"', location: '/thing' }));
  app.post('/thing', (c) => c.json({ created: true }, 201));
  app.get('/bug', () => {
    throw new Error('a bug');
  });
  app.get('/invalid', () => {
    throw new AppError('VALIDATION_FAILED', 'bad');
  });
  app.route('/', fileRoutes(store));
  app.route('/', docsRoutes());
  app.notFound((c) => errorResponse(c, new AppError('NOT_FOUND', 'no route')));
  app.onError(onError);
  return app;
}

beforeAll(async () => {
  await store.put(KEY, new Uint8Array([0x89, 0x50, 0x4e, 0x47]), 'image/png');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const API_CSP = "default-src 'none'; frame-ancestors 'none'";

function expectCommonHeaders(res: Response, what: string) {
  expect(res.headers.get('x-content-type-options'), what).toBe('nosniff');
  expect(res.headers.get('x-frame-options'), what).toBe('DENY');
  expect(res.headers.get('referrer-policy'), what).toBe('strict-origin-when-cross-origin');
  expect(res.headers.get('content-security-policy'), what).toBeTruthy();
  expect(res.headers.get('x-request-id'), what).toBeTruthy();
}

/** A CSP header as directive → sources. */
function directives(csp: string): Map<string, string[]> {
  return new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...sources]) => [name!, sources]));
}

describe('security headers on every answer', () => {
  const app = appWith([]);

  it('a JSON answer: nosniff, frame deny, referrer policy, same-origin resource policy, and a CSP that allows nothing', async () => {
    const res = await app.request('/thing');
    expect(res.status).toBe(200);
    expectCommonHeaders(res, 'GET /thing');
    expect(res.headers.get('content-security-policy')).toBe(API_CSP);
    expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('every error too: each middleware that answers by itself, the router, a thrown bug', async () => {
    const cases: [string, Request, number][] = [
      ['not found', new Request('http://localhost/nothing'), 404],
      ['validation error', new Request('http://localhost/invalid'), 400],
      ['bug', new Request('http://localhost/bug'), 500],
      ['body too large', new Request('http://localhost/thing', { method: 'POST', body: JSON.stringify({ a: 'x'.repeat(200) }), headers: { 'content-type': 'application/json' } }), 413],
      ['cross-site write', new Request('http://localhost/thing', { method: 'POST', headers: { origin: 'https://evil.example' } }), 403],
      ['foreign host', new Request('http://evil.example/thing'), 403],
    ];
    for (const [what, req, status] of cases) {
      const res = await app.request(req);
      expect(res.status, what).toBe(status);
      expectCommonHeaders(res, what);
      expect(res.headers.get('content-security-policy'), what).toBe(API_CSP);
      expect(res.headers.get('cross-origin-resource-policy'), what).toBe('same-origin');
    }
  });

  it('images under /files stay embeddable by pages of other origins (CORP cross-origin), revalidations included', async () => {
    const res = await app.request(`/files/${KEY}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expectCommonHeaders(res, 'file');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('content-security-policy')).toBe(API_CSP);

    const revalidated = await app.request(`/files/${KEY}`, { headers: { 'if-none-match': res.headers.get('etag')! } });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
  });

  it("the API reference page: only its own origin, and only the inline script that carries this answer's nonce", async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expectCommonHeaders(res, '/docs');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    const csp = directives(res.headers.get('content-security-policy')!);
    const scriptSrc = csp.get('script-src')!;
    expect(scriptSrc).toHaveLength(2);
    expect(scriptSrc[0]).toBe("'self'");
    const nonce = /^'nonce-([A-Za-z0-9+/=]{16,})'$/.exec(scriptSrc[1]!)?.[1];
    expect(nonce, scriptSrc.join(' ')).toBeDefined();
    expect(csp.get('default-src')).toEqual(["'self'"]);
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
    expect(csp.get('object-src')).toEqual(["'none'"]);
    expect(csp.get('base-uri')).toEqual(["'none'"]);
    // Nothing from another origin, no scheme that runs code, no inline script without the nonce.
    for (const [name, sources] of csp) {
      for (const source of sources) expect(source, `${name} ${source}`).toMatch(/^('self'|'none'|'unsafe-inline'|'nonce-[^']+'|data:|blob:)$/);
      if (name !== 'style-src') expect(sources, name).not.toContain("'unsafe-inline'");
    }

    // Every script of the page (the bundle and the inline initialisation) carries that nonce.
    const html = await res.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1]!);
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    for (const attributes of scripts) expect(attributes).toContain(`nonce="${nonce}"`);

    // A new nonce for every answer.
    const again = directives((await app.request('/docs')).headers.get('content-security-policy')!);
    expect(again.get('script-src')![1]).not.toBe(scriptSrc[1]);
  });

  it("the page's script itself is served under the strict policy (it is not a page)", async () => {
    const html = await (await app.request('/docs')).text();
    const src = /<script\b[^>]*\bsrc="([^"]+)"/.exec(html)![1]!;
    const res = await app.request(src);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(API_CSP);
    expectCommonHeaders(res, src);
  });
});

describe('CORS', () => {
  const preflight = (app: Hono<AppEnv>, origin: string) =>
    app.request('/thing', {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,idempotency-key' },
    });
  const corsHeaders = (res: Response) => [...res.headers.keys()].filter((name) => name.startsWith('access-control-'));

  describe('off without CORS_ORIGINS', () => {
    const app = appWith([]);

    it('sends no Access-Control-* header, to any origin', async () => {
      const res = await app.request('/thing', { headers: { origin: LISTED } });
      expect(res.status).toBe(200);
      expect(corsHeaders(res)).toEqual([]);
    });

    it('approves no preflight', async () => {
      const res = await preflight(app, LISTED);
      expect(corsHeaders(res)).toEqual([]);
      expect(res.status).toBe(404);
      expectCommonHeaders(res, 'preflight');
    });
  });

  describe('with CORS_ORIGINS', () => {
    const app = appWith([LISTED]);

    it('a listed origin may read answers and the headers clients need, without credentials', async () => {
      const res = await app.request('/thing', { headers: { origin: LISTED } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(LISTED);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('access-control-expose-headers')!.split(',').sort()).toEqual(
        ['etag', 'location', 'ratelimit', 'ratelimit-policy', 'retry-after', 'x-request-id'].sort(),
      );
      expect(res.headers.get('vary')).toMatch(/\borigin\b/i);
      expectCommonHeaders(res, 'listed origin');
    });

    it("a listed origin's preflight is answered: methods, the request headers clients send, cached for a while", async () => {
      const res = await preflight(app, LISTED);
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(LISTED);
      expect(res.headers.get('access-control-allow-methods')!.split(',')).toEqual(expect.arrayContaining(['GET', 'POST', 'PATCH', 'DELETE']));
      expect(res.headers.get('access-control-allow-headers')!.split(',').sort()).toEqual(['authorization', 'content-type', 'idempotency-key', 'x-request-id']);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
      expectCommonHeaders(res, 'preflight');
      // And the write that follows goes through (the cross-site guard trusts CORS_ORIGINS).
      const write = await app.request('/thing', { method: 'POST', headers: { origin: LISTED } });
      expect(write.status).toBe(201);
      expect(write.headers.get('access-control-allow-origin')).toBe(LISTED);
    });

    it('an origin that is not listed gets no Access-Control-* header and no preflight approval', async () => {
      for (const origin of ['https://evil.example', 'https://app.example.evil.test', 'http://app.example', 'null']) {
        const res = await app.request('/thing', { headers: { origin } });
        expect(res.status, origin).toBe(200);
        expect(corsHeaders(res), origin).toEqual([]);
        // Caches must not hand this answer to the listed origin, nor the listed origin's to this one.
        expect(res.headers.get('vary'), origin).toMatch(/\borigin\b/i);

        const pre = await preflight(app, origin);
        expect(corsHeaders(pre), origin).toEqual([]);
        expect(pre.status, origin).toBe(404);
      }
    });

    it('errors carry the CORS headers too, so a listed web app can read what went wrong', async () => {
      const res = await app.request('/invalid', { headers: { origin: LISTED } });
      expect(res.status).toBe(400);
      expect(res.headers.get('access-control-allow-origin')).toBe(LISTED);
    });
  });
});

/**
 * The whole service, as app.ts builds it: every route (from the app's own list, so a route added
 * later is covered), asked with and without a token and as a person's navigation, and every kind of
 * answer that something other than a route makes (401, 403, 413, 415, 429, the event stream, a
 * signed file, the pages).
 */
describe('security headers on every answer of the service', () => {
  const SECRET = 'a-legacy-jwt-secret-of-at-least-32-chars';
  const NAVIGATE = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
  let u: TestApp;
  let user: string;
  let token: Record<string, string>;
  beforeAll(async () => {
    u = await startTestApp({ AUTH: 'jwt', JWT_SECRET: SECRET, STORAGE_PUBLIC: 'false', RATE_LIMIT_PER_MIN: '100', MAX_BODY_BYTES: '1024' }, { runner: false });
    user = randomUUID();
    token = { authorization: `Bearer ${await signHs256(SECRET, supabaseUserClaims({ sub: user }))}` };
  });
  afterAll(() => u?.close());

  /** The common headers, the CSP that fits what the answer is, and the resource policy that fits where it is. */
  function expectSecured(res: Response, path: string, what: string) {
    expectCommonHeaders(res, what);
    const csp = res.headers.get('content-security-policy')!;
    // Under /files/ a stored object keeps the strict policy whatever its type; an error page
    // there is a page (its stylesheet must load).
    const files = path.startsWith('/files/');
    const page = /^text\/html/.test(res.headers.get('content-type') ?? '') && (!files || res.status >= 400);
    if (page) {
      const policy = directives(csp);
      expect(policy.get('default-src'), what).toEqual(["'self'"]);
      expect(policy.get('frame-ancestors'), what).toEqual(["'none'"]);
      expect(policy.get('script-src')?.[1], what).toMatch(/^'nonce-/);
    } else {
      expect(csp, what).toBe(API_CSP);
    }
    expect(res.headers.get('cross-origin-resource-policy'), what).toBe(files && !page ? 'cross-origin' : 'same-origin');
  }

  it('every route, with and without a token, and as a navigation; no CORS without CORS_ORIGINS', async () => {
    const routes = [...new Set(u.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`))];
    expect(routes.length).toBeGreaterThan(20);
    for (const route of routes) {
      const [method, pattern] = route.split(' ') as [string, string];
      const path = pattern.replace(/:id|:version|:name/g, (p) => (p === ':id' ? randomUUID() : p === ':version' ? '1' : 'app.js')).replace(':sceneIndex', '1').replace('*', 'x.png');
      const body = method === 'GET' || method === 'HEAD' ? undefined : '{}';
      // A read from another origin's page: without CORS_ORIGINS, no answer lets it read anything.
      const origin: Record<string, string> = body ? {} : { origin: LISTED };
      for (const [who, headers] of [['anonymous', {}], ['user', token], ['navigation', { ...NAVIGATE, ...token }]] as const) {
        const res = await u.app.request(path, { method, body, headers: { ...headers, ...origin, ...(body ? { 'content-type': 'application/json' } : {}) } });
        expect(res.status, `${route} ${who}`).toBeLessThan(500);
        expectSecured(res, path, `${route} ${who} (${res.status})`);
        expect([...res.headers.keys()].filter((name) => name.startsWith('access-control-')), `${route} ${who}`).toEqual([]);
        await res.body?.cancel();
      }
    }
  });

  it('answers made before any route: 401, 403, 413, 415, 429, 404', async () => {
    const post = (headers: Record<string, string>, body = JSON.stringify({ scenes: [{ prompt: 'p' }] })) =>
      u.app.request('/projects', { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    const cases: [string, Response, number, string?][] = [
      ['no token', await u.app.request('/projects'), 401],
      ['a bad token', await u.app.request('/projects', { headers: { authorization: 'Bearer not.a.token' } }), 401],
      ['cross-site write', await post({ ...token, origin: 'https://evil.example' }), 403],
      ['foreign host', await u.app.request('http://evil.example/projects', { headers: token }), 403],
      ['body too large', await post(token, JSON.stringify({ scenes: [{ prompt: 'x'.repeat(2048) }] })), 413],
      ['not JSON', await post({ ...token, 'content-type': 'text/plain' }), 415],
      ['no such route', await u.app.request('/nothing-here', { headers: token }), 404],
      ['unsigned file', await u.app.request('/files/projects/x.png'), 403, '/files/projects/x.png'],
    ];
    const limited = randomUUID();
    const limitedToken = { authorization: `Bearer ${await signHs256(SECRET, supabaseUserClaims({ sub: limited }))}` };
    await u.db.sql`INSERT INTO owner_rate_limits (key, tat) VALUES (${limited}, clock_timestamp() + interval '1 hour')`;
    cases.push(['rate limited', await post(limitedToken), 429]);
    for (const [what, res, status, path = '/projects'] of cases) {
      expect(res.status, what).toBe(status);
      expectSecured(res, path, what);
    }
  });

  it('the event stream, a signed file, the pages and the API reference', async () => {
    const created = await u.call('POST', '/projects', { scenes: [{ prompt: 'streamed' }] }, token);
    expect(created.status).toBe(202);
    const stream = await u.app.request(`/projects/${created.body.id}/events`, { headers: token });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expectSecured(stream, '/projects/:id/events', 'event stream');
    await stream.body?.cancel();

    const key = `projects/${created.body.id}/scene-1/image-0-g1-a1.png`;
    await u.deps.store.put(key, new Uint8Array([0x89, 0x50, 0x4e, 0x47]), 'image/png');
    const signed = new URL((await u.deps.store.signUrls!([key])).get(key)!);
    const file = await u.app.request(signed.pathname + signed.search);
    expect(file.status).toBe(200);
    expectSecured(file, signed.pathname, 'signed file');
    // An unsigned file opened in a browser: the error page may load its stylesheet.
    const refused = await u.app.request('/files/projects/x.png', { headers: NAVIGATE });
    expect(refused.status).toBe(403);
    expect(directives(refused.headers.get('content-security-policy')!).get('style-src')).toContain("'self'");

    for (const path of ['/', '/gallery', `/p/${created.body.id}`, '/docs']) {
      const res = await u.app.request(path, { headers: NAVIGATE });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/html/);
      expectSecured(res, path, path);
    }
  });
});
