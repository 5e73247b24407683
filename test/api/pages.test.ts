import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

const NAVIGATE = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'sec-fetch-mode': 'navigate' };

describe('web pages: shells, assets, error pages', () => {
  let t: TestApp;
  let jwt: TestApp;
  beforeAll(async () => {
    t = await startTestApp({}, { runner: false });
    jwt = await startTestApp({ AUTH: 'jwt', JWT_SECRET: 'a-test-secret-that-is-long-enough-for-hs256' }, { runner: false });
  });
  afterAll(async () => {
    await t?.close();
    await jwt?.close();
  });

  it('serves each page as a shell that loads its script and styles from this origin only, under the page CSP', async () => {
    for (const [path, page] of [['/', 'projects'], ['/gallery', 'gallery'], ['/p/anything', 'storyboard']] as const) {
      const res = await t.app.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      const html = await res.text();
      expect(html).toContain(`data-page="${page}"`);
      expect(html).toContain('<script type="module" src="/assets/app.js"></script>');
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("script-src 'self' 'nonce-");
      expect(csp).toMatch(/img-src 'self' data: blob: http:\/\/sceneworks\.test https:/);
      expect(csp).toContain("connect-src 'self'");
    }
  });

  it('serves the listed assets with an ETag (304 when unchanged), and nothing else', async () => {
    const js = await t.app.request('/assets/app.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const etag = js.headers.get('etag')!;
    expect((await t.app.request('/assets/app.js', { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await t.app.request('/assets/app.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
    // Every script and stylesheet under web/ (each one is served) names nothing of another origin: no
    // absolute or scheme-relative URL to import, fetch or url() from.
    for (const name of readdirSync(new URL('../../web/', import.meta.url))) {
      const asset = await t.app.request(`/assets/${name}`);
      expect(asset.status, name).toBe(200);
      expect(await asset.text(), name).not.toMatch(/(https?:)?\/\/[a-z0-9-]+(\.[a-z0-9-]+)+/i);
    }
    for (const path of ['/assets/nope.js', '/assets/..%2Fpackage.json', '/assets/%2E%2E%2Fsrc%2Fmain.ts', '/assets/']) {
      const res = await t.app.request(path);
      expect(res.status, path).toBe(404);
      expect(await res.text()).not.toContain('"name": "sceneworks"');
    }
  });

  it('answers a person opening an unknown URL with a 404 page, and an API client with the contract error body as before', async () => {
    const page = await t.app.request('/nothing/here', { headers: NAVIGATE });
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<h1>Not found</h1>');
    expect(html).toContain('There is nothing at /nothing/here.');
    const api = await t.call('GET', '/nothing/here');
    expect(api.status).toBe(404);
    expect(api.body.error.code).toBe('NOT_FOUND');
  });

  it('under AUTH=jwt the pages and assets need no token, the API still does, and a navigation to the API gets a readable page', async () => {
    expect((await jwt.app.request('/')).status).toBe(200);
    expect((await jwt.app.request('/assets/api.js')).status).toBe(200);
    const api = await jwt.call('GET', '/projects');
    expect(api.status).toBe(401);
    expect(api.body.error.code).toBe('UNAUTHORIZED');
    const page = await jwt.app.request('/projects', { headers: NAVIGATE });
    expect(page.status).toBe(401);
    expect(page.headers.get('www-authenticate')).toContain('Bearer');
    const html = await page.text();
    expect(html).toContain('<h1>Sign in required</h1>');
    expect(html).toContain('a bearer token is required');
    expect(html).not.toContain('"code"');
  });
});
