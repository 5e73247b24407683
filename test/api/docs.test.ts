import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({}, { runner: false });
});
afterAll(async () => {
  await t.close();
});

async function docsPage(): Promise<string> {
  const res = await t.app.request('/docs');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/html');
  return res.text();
}

/** Every URL the page names in an attribute, a CSS url() or an @import: what a browser would load. */
function urlsIn(html: string): string[] {
  const attributes = [...html.matchAll(/\b(?:src|href|srcset|poster|data)\s*=\s*["']?([^"'\s>]+)/gi)].map((m) => m[1]!);
  const css = [...html.matchAll(/url\(\s*["']?([^"')]+)/gi), ...html.matchAll(/@import\s+["']([^"']+)/gi)].map((m) => m[1]!);
  const modules = [...html.matchAll(/\bimport\s*(?:[\w{}\s,*]+from\s*)?["']([^"']+)["']/g)].map((m) => m[1]!);
  return [...attributes, ...css, ...modules];
}

/** The configuration object the page hands to Scalar.createApiReference. */
function referenceConfig(html: string): Record<string, unknown> {
  const match = /createApiReference\(\s*'#app',\s*(\{[\s\S]*?\})\s*\)\s*<\/script>/.exec(html);
  expect(match, 'the page initialises the reference').not.toBeNull();
  return JSON.parse(match![1]!) as Record<string, unknown>;
}

describe('GET /docs works without the internet', () => {
  it('names no script, style, font or module of another origin', async () => {
    const html = await docsPage();
    const urls = urlsIn(html);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) {
      // Same origin only: a root-relative path, never http(s):// nor a scheme-relative //host.
      expect(url, url).toMatch(/^\/(?!\/)/);
    }
    expect(html).not.toMatch(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
  });

  it('turns off what the bundle would otherwise fetch from Scalar: its web fonts and the agent chat', async () => {
    const config = referenceConfig(await docsPage());
    // With the default fonts the bundle loads fonts.scalar.com/*.woff2 (seen in a headless browser).
    expect(config.withDefaultFonts).toBe(false);
    expect(config.agent).toEqual({ disabled: true });
    expect(config.url).toBe('/openapi.json');
    expect((await t.app.request('/openapi.json')).status).toBe(200);
  });

  it("serves the page's script itself: JavaScript, cacheable for good, gzipped when asked", async () => {
    const html = await docsPage();
    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(1);
    const src = scripts[0]!;
    expect(src).toMatch(/^\/docs\/scalar-\d+\.\d+\.\d+\.js$/);

    const plain = await t.app.request(src);
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(plain.headers.get('content-encoding')).toBeNull();
    const code = await plain.text();
    // The single-file build: it defines window.Scalar.createApiReference, which the page calls.
    expect(code).toContain('createApiReference');
    expect(code.length).toBeGreaterThan(1_000_000);

    const zipped = await t.app.request(src, { headers: { 'accept-encoding': 'br, gzip;q=0.8' } });
    expect(zipped.headers.get('content-encoding')).toBe('gzip');
    expect(zipped.headers.get('vary')).toBe('accept-encoding');
    expect(gunzipSync(Buffer.from(await zipped.arrayBuffer())).toString('utf8')).toBe(code);

    const refused = await t.app.request(src, { headers: { 'accept-encoding': 'gzip;q=0' } });
    expect(refused.headers.get('content-encoding')).toBeNull();
    expect(await refused.text()).toBe(code);
  });
});
