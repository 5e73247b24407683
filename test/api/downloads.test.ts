import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { anyAddress, createOutboundFetch } from '../../src/net/outbound.ts';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader } from '@zip.js/zip.js/index-native.js';
import contentDisposition from 'content-disposition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/database.ts';
import { openImage, titleSlug } from '../../src/images/downloads.ts';
import type { ObjectStore } from '../../src/storage/store.ts';
import { startFakeJwks, supabaseUserClaims, type FakeJwks } from '../fakes/jwks.ts';
import { startFakeSupabaseStorage, type FakeSupabaseStorage } from '../fakes/supabase-storage.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Slot {
  id: string;
  sceneIndex: number;
  imageIndex: number;
  sha256: string | null;
  storageKey: string | null;
}

async function slotsOf(t: TestApp, projectId: string): Promise<Slot[]> {
  return t.db.sql<Slot[]>`
    SELECT id, scene_index, image_index, sha256, storage_key FROM generated_images
    WHERE content_creation_request_id = ${projectId} ORDER BY scene_index, image_index`;
}

async function get(t: TestApp, path: string, headers: Record<string, string> = {}) {
  const res = await t.app.request(path, { headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  const json = res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(bytes.toString()) : undefined;
  return { status: res.status, headers: res.headers, bytes, json };
}

/** Every entry of a ZIP, its CRC-32 checked, read with the library that wrote it. */
async function unzip(zip: Uint8Array): Promise<Map<string, Buffer>> {
  const reader = new ZipReader(new Uint8ArrayReader(zip), { useWebWorkers: false });
  const entries = new Map<string, Buffer>();
  for (const entry of await reader.getEntries()) {
    if (entry.directory) continue;
    entries.set(entry.filename, Buffer.from(await entry.getData(new Uint8ArrayWriter(), { checkCrc32: true })));
  }
  await reader.close();
  return entries;
}

/** What project.json must be: the project answer with each image url the file's name in the ZIP. */
function withFileNames(answer: any, files: (sceneIndex: number, imageIndex: number) => string | null) {
  return {
    ...answer,
    generatedOutput: {
      ...answer.generatedOutput,
      scenes: answer.generatedOutput.scenes.map((scene: any) => ({
        ...scene,
        imageUrls: scene.imageUrls.map((url: string | null, i: number) => (url === null ? null : files(scene.index, i))),
        images: scene.images.map((image: any) => ({ ...image, url: image.url === null ? null : files(scene.index, image.imageIndex) })),
      })),
    },
  };
}

async function waitFor(t: TestApp, id: string, headers: Record<string, string> = {}) {
  for (let i = 0; i < 600; i++) {
    const res = await t.call('GET', `/projects/${id}`, undefined, headers);
    if (res.status !== 200) throw new Error(`GET /projects/${id}: ${res.status}`);
    if (!['queued', 'running'].includes(res.body.status)) return res.body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`project ${id} never finished`);
}

async function createProject(t: TestApp, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const created = await t.call('POST', '/projects', body, headers);
  expect(created.status).toBe(202);
  const done = await waitFor(t, created.body.id, headers);
  expect(done.status).toBe('completed');
  return done;
}

/** Legacy image URLs: a server of our own, with the ways such URLs fail. */
interface LegacyHost {
  url: string;
  png: Buffer;
  close(): Promise<void>;
}

async function startLegacyHost(): Promise<LegacyHost> {
  const png = randomBytes(40_000);
  const server: Server = createServer((req, res) => {
    switch (req.url) {
      case '/old.png':
        res.writeHead(200, { 'content-type': 'image/png' });
        return void res.end(png);
      case '/untyped':
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return void res.end(png);
      case '/gone.png':
        res.writeHead(404, { 'content-type': 'text/plain' });
        return void res.end('no such file');
      case '/broken.png':
        res.writeHead(500);
        return void res.end();
      case '/page':
        res.writeHead(200, { 'content-type': 'text/html' });
        return void res.end('<html>sign in</html>');
      case '/to-data':
        res.writeHead(302, { location: 'data:image/png,secret-inline-bytes' });
        return void res.end();
      case '/hang':
        return; // never answers
      case '/stall':
        // Headers and a first part, then nothing more.
        res.writeHead(200, { 'content-type': 'image/png' });
        return void res.write(png.subarray(0, 1000));
      case '/big':
        res.writeHead(200, { 'content-type': 'image/png' });
        return void res.end(randomBytes(5000)); // chunked: no Content-Length
      default:
        res.writeHead(404);
        res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    png,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A store that records every object it hands out and how each one's body ended. */
function tracking() {
  const bodies: { key: string; state: 'open' | 'ended' | 'cancelled' | 'errored' }[] = [];
  const calls = { started: 0 };
  const wrap = (store: ObjectStore): ObjectStore => ({
    ...store,
    async get(key) {
      calls.started += 1;
      const object = await store.get(key);
      if (!object) return object;
      const entry = { key, state: 'open' as (typeof bodies)[number]['state'] };
      bodies.push(entry);
      const reader = object.body.getReader();
      const body = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            try {
              const { done, value } = await reader.read();
              if (done) {
                entry.state = 'ended';
                controller.close();
              } else controller.enqueue(value);
            } catch (err) {
              entry.state = 'errored';
              controller.error(err);
            }
          },
          cancel(reason) {
            entry.state = 'cancelled';
            return reader.cancel(reason);
          },
        },
        { highWaterMark: 0 },
      );
      return { ...object, body };
    },
  });
  return { bodies, calls, wrap };
}

let legacy: LegacyHost;
beforeAll(async () => {
  legacy = await startLegacyHost();
});
afterAll(() => legacy.close());

describe('file names', () => {
  it.each([
    ['Café crème ☕ 東京', 'café-crème-東京', 'cafe-creme'],
    ['My  Storyboard!', 'my-storyboard', 'my-storyboard'],
    ['東京', '東京', 'project'],
    ['   ', 'project', 'project'],
    [null, 'project', 'project'],
  ])('%j → %s (ASCII %s)', (title, name, ascii) => {
    expect(titleSlug(title)).toEqual({ name, ascii });
  });
});

describe('downloads from the local store (public)', () => {
  let t: TestApp;
  const tracker = tracking();
  let project: any;
  beforeAll(async () => {
    t = await startTestApp({ STORAGE_PUBLIC: 'true' }, { wrapStore: tracker.wrap });
    project = await createProject(t, { title: 'Café crème ☕ 東京', scenes: [{ prompt: 'one' }, { prompt: 'two' }], imagesPerScene: 2, aspectRatio: '1:1' });
  });
  afterAll(() => t.close());

  it('an image: the stored bytes, their type and length, as an attachment with an ASCII name and a UTF-8 one', async () => {
    for (const slot of await slotsOf(t, project.id)) {
      const res = await get(t, `/images/${slot.id}/download`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('content-length')).toBe(String(res.bytes.length));
      expect(sha256(res.bytes)).toBe(slot.sha256);
      const n = `scene-${slot.sceneIndex}-image-${slot.imageIndex + 1}.png`;
      expect(res.headers.get('content-disposition')).toBe(
        `attachment; filename="cafe-creme-${n}"; filename*=UTF-8''${encodeURIComponent(`café-crème-東京-${n}`)}`,
      );
      expect(contentDisposition.parse(res.headers.get('content-disposition')!).parameters.filename).toBe(`café-crème-東京-${n}`);
    }
  });

  it('an ASCII title needs no filename*; no title is "project"', async () => {
    const ascii = await createProject(t, { title: 'My Storyboard', scenes: [{ prompt: 'x', index: 3 }] });
    const [slot] = await slotsOf(t, ascii.id);
    expect((await get(t, `/images/${slot!.id}/download`)).headers.get('content-disposition')).toBe('attachment; filename="my-storyboard-scene-3-image-1.png"');
    const untitled = await createProject(t, { scenes: [{ prompt: 'x' }] });
    const [other] = await slotsOf(t, untitled.id);
    const res = await get(t, `/images/${other!.id}/download`);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="project-scene-1-image-1.png"');
    expect((await get(t, `/projects/${untitled.id}/archive`)).headers.get('content-disposition')).toBe('attachment; filename="project.zip"');
  });

  it('the archive: every image as scene-<index>/image-<i>.png, and project.json, the answer with file names', async () => {
    const res = await get(t, `/projects/${project.id}/archive`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="cafe-creme.zip"; filename*=UTF-8''${encodeURIComponent('café-crème-東京.zip')}`);
    const entries = await unzip(res.bytes);
    const slots = await slotsOf(t, project.id);
    const name = (scene: number, image: number) => `scene-${scene}/image-${image}.png`;
    expect([...entries.keys()].sort()).toEqual([...slots.map((s) => name(s.sceneIndex, s.imageIndex)), 'project.json'].sort());
    for (const slot of slots) expect(sha256(entries.get(name(slot.sceneIndex, slot.imageIndex))!)).toBe(slot.sha256);
    const answer = (await t.call('GET', `/projects/${project.id}`)).body;
    expect(JSON.parse(entries.get('project.json')!.toString())).toEqual({ ...withFileNames(answer, name), missing: [] });
  });

  it('images saved only as a legacy URL: fetched by the service; one that is gone is a 404 in a download and listed "missing" in the archive', async () => {
    const done = await createProject(t, { title: 'Legacy', scenes: [{ prompt: 'old' }], imagesPerScene: 6, aspectRatio: '1:1' });
    const slots = await slotsOf(t, done.id);
    // A port nothing listens on (fetch refuses a few well-known ones outright: not port 1).
    const refused = `http://127.0.0.1:${await freePort()}/refused.png`;
    const urls = [`${legacy.url}/old.png`, `${legacy.url}/gone.png`, `${legacy.url}/broken.png`, refused, `${legacy.url}/untyped`];
    for (const [i, url] of urls.entries()) {
      await t.db.sql`UPDATE generated_images SET storage_key = NULL, image_url = ${url} WHERE id = ${slots[i]!.id}`;
    }
    const old = await get(t, `/images/${slots[0]!.id}/download`);
    expect(old.status).toBe(200);
    expect(old.bytes.equals(legacy.png)).toBe(true);
    expect(old.headers.get('content-type')).toBe('image/png');
    expect(old.headers.get('content-disposition')).toBe('attachment; filename="legacy-scene-1-image-1.png"');
    const gone = await get(t, `/images/${slots[1]!.id}/download`);
    expect({ status: gone.status, code: gone.json.error.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
    expect(gone.json.error.message).toMatch(/its URL answers HTTP 404/);
    for (const slot of [slots[2]!, slots[3]!]) {
      const failing = await get(t, `/images/${slot.id}/download`);
      expect({ status: failing.status, code: failing.json.error.code }).toEqual({ status: 503, code: 'UNAVAILABLE' });
    }
    // Said to be bytes, not an image type: the row's recorded type decides.
    const untyped = await get(t, `/images/${slots[4]!.id}/download`);
    expect({ status: untyped.status, type: untyped.headers.get('content-type') }).toEqual({ status: 200, type: 'image/png' });

    const archive = await get(t, `/projects/${done.id}/archive`);
    expect(archive.status).toBe(200);
    const entries = await unzip(archive.bytes);
    expect([...entries.keys()].sort()).toEqual(['project.json', 'scene-1/image-0.png', 'scene-1/image-4.png', 'scene-1/image-5.png']);
    expect(entries.get('scene-1/image-0.png')!.equals(legacy.png)).toBe(true);
    expect(sha256(entries.get('scene-1/image-5.png')!)).toBe(slots[5]!.sha256);
    const json = JSON.parse(entries.get('project.json')!.toString());
    expect(json.generatedOutput.scenes[0].imageUrls).toEqual(['scene-1/image-0.png', null, null, null, 'scene-1/image-4.png', 'scene-1/image-5.png']);
    expect(json.generatedOutput.scenes[0].images.map((i: any) => i.url)).toEqual(json.generatedOutput.scenes[0].imageUrls);
    expect(json.missing).toEqual([
      { sceneIndex: 1, imageIndex: 1, imageId: slots[1]!.id, reason: 'its URL answers HTTP 404' },
      { sceneIndex: 1, imageIndex: 2, imageId: slots[2]!.id, reason: 'its URL answers HTTP 500' },
      { sceneIndex: 1, imageIndex: 3, imageId: slots[3]!.id, reason: expect.stringMatching(/^its URL cannot be fetched \(ECONNREFUSED\)$/) },
    ]);
  });

  it('a legacy project (image URLs only in the scene JSON, no rows) is archived from those URLs', async () => {
    const id = randomUUID();
    const output = { scenes: [{ prompt: 'old', imageUrls: [`${legacy.url}/old.png`, `${legacy.url}/gone.png`] }], note: 'kept' };
    await t.db.sql`INSERT INTO content_creation_requests (id, user_id, title, generated_output) VALUES (${id}, ${t.deps.singleOwner.ownerId}, 'Old', ${t.db.sql.json(output)})`;
    const entries = await unzip((await get(t, `/projects/${id}/archive`)).bytes);
    expect([...entries.keys()].sort()).toEqual(['project.json', 'scene-1/image-0.png']);
    expect(entries.get('scene-1/image-0.png')!.equals(legacy.png)).toBe(true);
    const json = JSON.parse(entries.get('project.json')!.toString());
    expect(json.generatedOutput.note).toBe('kept');
    expect(json.generatedOutput.scenes[0].imageUrls).toEqual(['scene-1/image-0.png', null]);
    expect(json.missing).toEqual([{ sceneIndex: 1, imageIndex: 1, imageId: null, reason: 'its URL answers HTTP 404' }]);
  });

  it('only http(s) URLs are fetched: any other stored URL is never read, nor followed to by a redirect', async () => {
    const done = await createProject(t, { title: 'Guard', scenes: [{ prompt: 'g' }], imagesPerScene: 5, aspectRatio: '1:1' });
    const slots = await slotsOf(t, done.id);
    const inline = randomBytes(64);
    // fetch() itself would read the third (a data: URL in capitals is still one) and serve its bytes.
    const urls = [
      `data:image/png;base64,${inline.toString('base64')}`,
      'data:image/png,secret-inline-bytes',
      'DATA:image/png,secret-inline-bytes',
      'file:///etc/hostname',
      `${legacy.url}/to-data`,
    ];
    for (const [i, url] of urls.entries()) {
      await t.db.sql`UPDATE generated_images SET storage_key = NULL, image_url = ${url} WHERE id = ${slots[i]!.id}`;
    }
    // A base64 image inline in the row (legacy rows hold them) is decoded, not fetched.
    const decoded = await get(t, `/images/${slots[0]!.id}/download`);
    expect({ status: decoded.status, same: decoded.bytes.equals(inline) }).toEqual({ status: 200, same: true });
    for (const [slot, status] of [[slots[1]!, 404], [slots[2]!, 404], [slots[3]!, 404], [slots[4]!, 503]] as const) {
      const res = await get(t, `/images/${slot.id}/download`);
      expect(res.status).toBe(status);
      expect(res.bytes.toString()).not.toContain('secret-inline-bytes');
    }
    const entries = await unzip((await get(t, `/projects/${done.id}/archive`)).bytes);
    expect([...entries.keys()].sort()).toEqual(['project.json', 'scene-1/image-0.png']);
    const json = JSON.parse(entries.get('project.json')!.toString());
    expect(json.missing.map((m: any) => m.imageIndex)).toEqual([1, 2, 3, 4]);
    expect(json.missing[1].reason).toBe('its URL is data: (only http and https URLs are fetched)');
    expect(json.missing[2].reason).toBe('its URL is file: (only http and https URLs are fetched)');
  });

  it('404: an unknown image or project, a slot without an image', async () => {
    expect((await get(t, `/images/${randomUUID()}/download`)).status).toBe(404);
    expect((await get(t, `/projects/${randomUUID()}/archive`)).status).toBe(404);
    const [slot] = await slotsOf(t, project.id);
    const done = await createProject(t, { scenes: [{ prompt: 'empty' }] });
    const [empty] = await slotsOf(t, done.id);
    await t.db.sql`UPDATE generated_images SET storage_key = NULL, image_url = NULL, status = 'failed' WHERE id = ${empty!.id}`;
    const res = await get(t, `/images/${empty!.id}/download`);
    expect({ status: res.status, code: res.json.error.code, message: res.json.error.message }).toEqual({ status: 404, code: 'NOT_FOUND', message: 'image not found' });
    expect((await get(t, `/images/${slot!.id}/download`)).status).toBe(200);
  });

  it('a client that stops reading the archive stops the work: every image opened is released, the rest never opened', async () => {
    const done = await createProject(t, { title: 'Big', scenes: [{ prompt: 'a' }, { prompt: 'b' }, { prompt: 'c' }], imagesPerScene: 4, aspectRatio: '16:9' });
    const [opened, started] = [tracker.bodies.length, tracker.calls.started];
    const res = await t.app.request(`/projects/${done.id}/archive`);
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel(new Error('the client went away'));
    // Settled: every get begun has answered, and no body it answered is still open.
    const mine = () => tracker.bodies.slice(opened);
    const settled = () => tracker.calls.started - started === mine().length && mine().every((b) => b.state !== 'open');
    for (let i = 0; i < 250 && !settled(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(mine().length).toBeGreaterThan(0);
    expect(mine().filter((b) => b.state === 'open')).toEqual([]);
    expect(tracker.calls.started - started).toBe(mine().length);
    expect(mine().length).toBeLessThan(12);
  });
});

describe('downloads from the local store (private)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ STORAGE_PUBLIC: 'false' });
  });
  afterAll(() => t.close());

  it('read through the store: no signed URL in the way, none in project.json', async () => {
    const done = await createProject(t, { title: 'Private', scenes: [{ prompt: 'p' }], imagesPerScene: 2, aspectRatio: '1:1' });
    expect(done.generatedOutput.scenes[0].imageUrls[0]).toMatch(/signature=/);
    const slots = await slotsOf(t, done.id);
    for (const slot of slots) expect(sha256((await get(t, `/images/${slot.id}/download`)).bytes)).toBe(slot.sha256);
    const entries = await unzip((await get(t, `/projects/${done.id}/archive`)).bytes);
    for (const slot of slots) expect(sha256(entries.get(`scene-1/image-${slot.imageIndex}.png`)!)).toBe(slot.sha256);
    const json = JSON.parse(entries.get('project.json')!.toString());
    expect(json.generatedOutput.scenes[0].imageUrls).toEqual(['scene-1/image-0.png', 'scene-1/image-1.png']);
  });
});

describe('downloads from Supabase Storage (the fake, private bucket)', () => {
  let storage: FakeSupabaseStorage;
  let t: TestApp;
  beforeAll(async () => {
    storage = await startFakeSupabaseStorage({ prefix: '/storage/v1' });
    t = await startTestApp({
      STORAGE: 'supabase',
      SUPABASE_URL: storage.origin,
      SUPABASE_SERVICE_ROLE_KEY: storage.serviceRoleKey,
      STORAGE_BUCKET: 'downloads',
      STORAGE_PUBLIC: 'false',
    });
  });
  afterAll(async () => {
    await t.close();
    await storage.close();
  });

  it('a download and an archive read the objects with the service key, never through a signed URL', async () => {
    const done = await createProject(t, { title: 'Cloud', scenes: [{ prompt: 's' }], imagesPerScene: 2, aspectRatio: '1:1' });
    const slots = await slotsOf(t, done.id);
    const res = await get(t, `/images/${slots[0]!.id}/download`);
    expect(res.status).toBe(200);
    expect(sha256(res.bytes)).toBe(slots[0]!.sha256);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="cloud-scene-1-image-1.png"');
    const entries = await unzip((await get(t, `/projects/${done.id}/archive`)).bytes);
    expect([...entries.keys()].sort()).toEqual(['project.json', 'scene-1/image-0.png', 'scene-1/image-1.png']);
    for (const slot of slots) expect(sha256(entries.get(`scene-1/image-${slot.imageIndex}.png`)!)).toBe(slot.sha256);
    const reads = storage.requests.filter((r) => r.route === 'download');
    expect(reads.map((r) => r.path).sort()).toEqual([slots[0]!, ...slots].map((s) => `/object/downloads/${s.storageKey}`).sort());
    for (const read of reads) expect(read.headers.authorization).toBe(`Bearer ${storage.serviceRoleKey}`);
    expect(storage.requests.some((r) => r.route === 'signedDownload')).toBe(false);
  });
});

describe('owner scope (AUTH=jwt)', () => {
  let jwks: FakeJwks;
  let t: TestApp;
  beforeAll(async () => {
    jwks = await startFakeJwks();
    t = await startTestApp({ AUTH: 'jwt', JWT_JWKS_URL: jwks.url, STORAGE_PUBLIC: 'true' });
  });
  afterAll(async () => {
    await t.close();
    await jwks.close();
  });

  it("another owner's image and project are a 404, as if they did not exist; the owner gets them", async () => {
    const owner = { authorization: `Bearer ${await jwks.sign(supabaseUserClaims())}` };
    const other = { authorization: `Bearer ${await jwks.sign(supabaseUserClaims())}` };
    const done = await createProject(t, { title: 'Mine', scenes: [{ prompt: 'm' }] }, owner);
    const [slot] = await slotsOf(t, done.id);
    for (const path of [`/images/${slot!.id}/download`, `/projects/${done.id}/archive`]) {
      const foreign = await get(t, path, other);
      expect({ status: foreign.status, code: foreign.json.error.code }).toEqual({ status: 404, code: 'NOT_FOUND' });
      expect(foreign.bytes.toString()).not.toContain('Mine');
      expect((await get(t, path, owner)).status).toBe(200);
      expect((await get(t, path)).status).toBe(401);
    }
  });
});

describe('legacy URL fetch limits', () => {
  const store = { name: 'none', put: async () => ({ url: null }), remove: async () => {}, get: async () => undefined } satisfies ObjectStore;
  const open = (path: string, legacy = { timeoutMs: 300, maxBytes: 1000, fetch: createOutboundFetch(anyAddress) }) => openImage({ store, legacy }, { storageKey: null, imageUrl: `${legacyHost()}${path}`, mimeType: null });
  const legacyHost = () => legacy.url;
  const drain = async (body: ReadableStream<Uint8Array>) => {
    for await (const _ of body) void _;
  };

  it('a server that does not answer is given up after the timeout', async () => {
    expect(await open('/hang')).toEqual({ ok: false, gone: false, reason: 'its URL did not answer within 300 ms' });
  });

  it('a body that stops coming errors after the timeout, instead of hanging the download', async () => {
    const opened = await open('/stall', { timeoutMs: 300, maxBytes: 1_000_000, fetch: createOutboundFetch(anyAddress) });
    expect(opened.ok).toBe(true);
    await expect(drain((opened as { image: { body: ReadableStream<Uint8Array> } }).image.body)).rejects.toThrow(/broke off: timed out/);
  });

  it('more bytes than the limit: the read fails part way', async () => {
    const opened = await open('/big', { timeoutMs: 5000, maxBytes: 1000, fetch: createOutboundFetch(anyAddress) });
    expect(opened.ok).toBe(true);
    await expect(drain((opened as { image: { body: ReadableStream<Uint8Array> } }).image.body)).rejects.toThrow(/larger than the 1000 bytes/);
  });

  it('an answer that is not an image is refused', async () => {
    expect(await open('/page')).toEqual({ ok: false, gone: false, reason: 'its URL answers text/html, not an image' });
  });
});
