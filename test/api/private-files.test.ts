import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalStore, fileUrlSignature } from '../../src/storage/local.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * STORAGE_PUBLIC=false with the local store: a private bucket. Answers carry signed URLs; GET
 * /files serves those and refuses anything else with 403 FORBIDDEN.
 */
let t: TestApp;
/** The secret the service made itself (no FILES_URL_SECRET), read back to forge URLs with. */
let secret: string;
/** The two image URLs of a generated project: the real thing clients get. */
let urls: URL[];

beforeAll(async () => {
  t = await startTestApp({ STORAGE_PUBLIC: 'false' });
  secret = (await readFile(path.join(t.dataDir, 'files-url.key'), 'utf8')).trim();
  const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'a lighthouse at dusk' }], imagesPerScene: 2 });
  expect(created.status).toBe(202);
  const done = await t.waitForProject(created.body.id);
  expect(done.status).toBe('completed');
  const scene = done.generatedOutput.scenes[0];
  urls = scene.images.map((image: { url: string }) => new URL(image.url));
  expect(scene.imageUrls).toEqual(scene.images.map((image: { url: string }) => image.url));
});
afterAll(() => t?.close());

const keyOf = (url: URL) => url.pathname.slice('/files/'.length);
const get = (target: string, headers: Record<string, string> = {}) => t.app.request(target, { headers });
const nowS = () => Math.floor(Date.now() / 1000);

async function expectForbidden(res: Response) {
  expect(res.status).toBe(403);
  const body = await res.json();
  expect(body).toMatchObject({ error: { code: 'FORBIDDEN', message: expect.any(String), requestId: expect.any(String) } });
  return body.error.message as string;
}

describe('private local store: signed URLs', () => {
  it('GET /projects/:id gives every image a URL signed for SIGNED_URL_TTL_S at most', async () => {
    const before = nowS();
    expect(urls).toHaveLength(2);
    for (const url of urls) {
      expect(url.origin).toBe('http://sceneworks.test');
      expect(url.pathname).toMatch(/^\/files\/.+\.png$/);
      expect([...url.searchParams.keys()].sort()).toEqual(['expires', 'signature']);
      const expires = Number(url.searchParams.get('expires'));
      expect(expires).toBeGreaterThan(before);
      expect(expires).toBeLessThanOrEqual(before + 3600 + 1);
      expect(url.searchParams.get('signature')).toBe(fileUrlSignature(secret, keyOf(url), expires));
    }
  });

  it('serves a signed URL: the PNG, cacheable privately for no longer than the URL lives', async () => {
    const url = urls[0]!;
    const before = nowS();
    const res = await get(url.pathname + url.search);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

    const cacheControl = res.headers.get('cache-control')!;
    const match = /^private, max-age=(\d+)$/.exec(cacheControl);
    expect(match, cacheControl).not.toBeNull();
    expect(Number(match![1])).toBeLessThanOrEqual(Number(url.searchParams.get('expires')) - before);

    // A revalidation is answered (304) under the same rules.
    const again = await get(url.pathname + url.search, { 'if-none-match': res.headers.get('etag')! });
    expect(again.status).toBe(304);
    expect(again.headers.get('cache-control')).toMatch(/^private, max-age=\d+$/);
  });

  it('refuses a request without the signature, also for a key that does not exist (no probing)', async () => {
    const url = urls[0]!;
    await expectForbidden(await get(url.pathname));
    await expectForbidden(await get(`${url.pathname}?expires=${url.searchParams.get('expires')}`));
    await expectForbidden(await get(`${url.pathname}?signature=${url.searchParams.get('signature')}`));
    await expectForbidden(await get('/files/projects/nothing-here.png'));
    // Same answer for an If-None-Match revalidation without a signature.
    await expectForbidden(await get(url.pathname, { 'if-none-match': '"anything"' }));
  });

  it('refuses a tampered URL: another expiry, a changed or malformed signature', async () => {
    const url = urls[0]!;
    const expires = url.searchParams.get('expires')!;
    const signature = url.searchParams.get('signature')!;
    const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
    await expectForbidden(await get(`${url.pathname}?expires=${Number(expires) + 3600}&signature=${signature}`));
    await expectForbidden(await get(`${url.pathname}?expires=${expires}&signature=${flipped}`));
    // Malformed values are a 403 too, never a 500 (a signature of another length, expiry not a number).
    for (const bad of [`expires=${expires}&signature=abc`, `expires=${expires}&signature=${signature}xx`, `expires=1e99&signature=${signature}`, `expires=-1&signature=${signature}`]) {
      await expectForbidden(await get(`${url.pathname}?${bad}`));
    }
  });

  it('refuses the signature of another key', async () => {
    const [first, second] = urls as [URL, URL];
    expect(keyOf(first)).not.toBe(keyOf(second));
    // Each URL works on its own…
    expect((await get(second.pathname + second.search)).status).toBe(200);
    // …but not on the other's key.
    await expectForbidden(await get(first.pathname + second.search));
  });

  it('refuses an expired URL whose signature is right for its expiry', async () => {
    const url = urls[0]!;
    const key = keyOf(url);
    const future = nowS() + 600;
    // The forged URL is correct: with an expiry to come, it is served…
    expect((await get(`${url.pathname}?expires=${future}&signature=${fileUrlSignature(secret, key, future)}`)).status).toBe(200);
    // …and with one that has passed, refused.
    const past = nowS() - 1;
    const message = await expectForbidden(await get(`${url.pathname}?expires=${past}&signature=${fileUrlSignature(secret, key, past)}`));
    expect(message).toMatch(/expired/);
  });

  it('signs for SIGNED_URL_TTL_S: a URL lives between three quarters of it and all of it, and no cache keeps it longer', async () => {
    const short = await startTestApp({ STORAGE_PUBLIC: 'false', SIGNED_URL_TTL_S: '120', DATA_DIR: t.dataDir }, { db: t.db, runner: false });
    try {
      const key = keyOf(urls[0]!);
      const before = nowS();
      const url = new URL((await short.deps.store.signUrls!([key])).get(key)!);
      const after = nowS();
      const expires = Number(url.searchParams.get('expires'));
      expect(expires).toBeGreaterThan(before + 90 - 1);
      expect(expires).toBeLessThanOrEqual(after + 120);
      const res = await short.app.request(url.pathname + url.search);
      expect(res.status).toBe(200);
      expect(Number(/max-age=(\d+)/.exec(res.headers.get('cache-control')!)![1])).toBeLessThanOrEqual(120);
    } finally {
      await short.close();
    }
  });

  it('signs with FILES_URL_SECRET when it is set, and then keeps no secret in DATA_DIR', async () => {
    const configured = 'a-secret-of-the-operator-that-is-long-enough';
    const other = await startTestApp({ STORAGE_PUBLIC: 'false', FILES_URL_SECRET: configured }, { db: t.db, runner: false });
    try {
      const key = keyOf(urls[0]!);
      const signed = await other.deps.store.signUrls!([key]);
      const url = new URL(signed.get(key)!);
      const expires = Number(url.searchParams.get('expires'));
      expect(url.searchParams.get('signature')).toBe(fileUrlSignature(configured, key, expires));
      await expect(access(path.join(other.dataDir, 'files-url.key'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await other.close();
    }
  });
});

describe('the signing secret kept in DATA_DIR', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sceneworks-url-secret-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const storeAt = (secretFile: string) =>
    createLocalStore({ root: path.join(dir, 'files'), publicBaseUrl: 'http://sceneworks.test', signed: { ttlS: 3600, secretFile } });

  it('is made once, readable by its owner only, and reused after a restart: URLs handed out stay valid', async () => {
    const file = path.join(dir, 'restart', 'files-url.key');
    const first = storeAt(file);
    await first.init!();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const url = new URL((await first.signUrls!(['projects/a.png'])).get('projects/a.png')!);

    const restarted = storeAt(file);
    await restarted.init!();
    const access = restarted.checkSignedUrl!('projects/a.png', url.searchParams.get('expires')!, url.searchParams.get('signature')!, nowS());
    expect(access).toEqual({ granted: true, expiresAt: Number(url.searchParams.get('expires')) });
  });

  it('concurrent first starts agree on one secret', async () => {
    const file = path.join(dir, 'race', 'files-url.key');
    const stores = Array.from({ length: 8 }, () => storeAt(file));
    await Promise.all(stores.map((s) => s.init!()));
    const signatures = await Promise.all(stores.map(async (s) => new URL((await s.signUrls!(['k.png'])).get('k.png')!).searchParams.get('signature')));
    expect(new Set(signatures).size).toBe(1);
  });

  it('a file that holds no usable secret stops the start, rather than signing with it', async () => {
    const file = path.join(dir, 'short.key');
    await writeFile(file, 'short\n');
    await expect(storeAt(file).init!()).rejects.toThrow(/does not hold a URL signing secret/);
  });

  it('a public store puts permanent URLs and signs nothing', async () => {
    const store = createLocalStore({ root: path.join(dir, 'public'), publicBaseUrl: 'http://sceneworks.test' });
    expect(await store.put('projects/p.png', new Uint8Array([1, 2, 3]), 'image/png')).toEqual({ url: 'http://sceneworks.test/files/projects/p.png' });
    expect(store.signUrls).toBeUndefined();
    expect(store.checkSignedUrl).toBeUndefined();
    expect(store.signedUrlTtlS).toBeUndefined();
  });
});

describe('a store switched from public to private', () => {
  it('serves images stored while it was public by signed URLs too (their saved URL no longer opens)', async () => {
    const before = await startTestApp({ STORAGE_PUBLIC: 'true' });
    try {
      const created = await before.call('POST', '/projects', { scenes: [{ prompt: 'stored in public' }] });
      const done = await before.waitForProject(created.body.id);
      const publicUrl = new URL(done.generatedOutput.scenes[0].imageUrls[0]);
      expect(publicUrl.search).toBe('');
      // The same database and files, now private.
      const after = await startTestApp({ STORAGE_PUBLIC: 'false', DATA_DIR: before.dataDir }, { db: before.db, runner: false });
      try {
        const read = await after.call('GET', `/projects/${created.body.id}`);
        const url = new URL(read.body.generatedOutput.scenes[0].imageUrls[0]);
        expect(url.pathname).toBe(publicUrl.pathname);
        expect(url.searchParams.get('signature')).toBeTruthy();
        expect((await after.app.request(url.pathname + url.search)).status).toBe(200);
        expect((await after.app.request(publicUrl.pathname)).status).toBe(403);
      } finally {
        await after.close();
      }
    } finally {
      await before.close();
    }
  });
});
