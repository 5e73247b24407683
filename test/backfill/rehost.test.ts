import { createHash } from 'node:crypto';
import { anyAddress, createOutboundFetch } from '../../src/net/outbound.ts';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rehostLegacyImages, type RehostOptions } from '../../src/backfill/rehost.ts';
import { freePort } from '../../src/db/database.ts';
import { createLocalStore, type LocalObjectStore } from '../../src/storage/local.ts';
import type { ObjectStore } from '../../src/storage/store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const BASE = 'http://sceneworks.test';
let db: TestDatabase;
let root: string;
let store: LocalObjectStore;
let server: Server;
let origin: string;
let png: Buffer;
let jpeg: Buffer;
let smallPng: Buffer;
/** Requests to /gated/<name> wait until the test opens that gate; `arrived` resolves when one comes. */
const gates = new Map<string, { arrived: PromiseWithResolvers<void>; open: PromiseWithResolvers<void> }>();
function gate(name: string) {
  if (!gates.has(name)) gates.set(name, { arrived: Promise.withResolvers(), open: Promise.withResolvers() });
  return gates.get(name)!;
}

beforeAll(async () => {
  db = await createTestDatabase();
  root = await mkdtemp(path.join(tmpdir(), 'sceneworks-rehost-'));
  store = createLocalStore({ root, publicBaseUrl: BASE });
  png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3366cc' } }).png().toBuffer();
  jpeg = await sharp({ create: { width: 20, height: 10, channels: 3, background: '#cc6633' } }).jpeg().toBuffer();
  smallPng = await sharp({ create: { width: 8, height: 6, channels: 4, background: '#00ff0080' } }).png().toBuffer();
  server = createServer(async (req, res) => {
    const url = req.url ?? '';
    if (url === '/good.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    if (url === '/good.jpg') return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
    if (url === '/missing.png') return res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    if (url === '/boom.png') return res.writeHead(500).end('oops');
    if (url === '/page.png') return res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html><body>expired</body></html>');
    if (url === '/hang.png') return; // never answers
    if (url.startsWith('/gated/')) {
      const g = gate(url.slice('/gated/'.length));
      g.arrived.resolve();
      await g.open.promise;
      return url.endsWith('-404') ? res.writeHead(404).end() : res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    }
    res.writeHead(500).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  for (const g of gates.values()) g.open.resolve();
  server.closeAllConnections();
  server.close();
  await db.drop();
  await rm(root, { recursive: true, force: true });
});

const options = (o: Partial<RehostOptions> = {}): RehostOptions => ({ concurrency: 3, timeoutMs: 300, batchSize: 2, fetch: createOutboundFetch(anyAddress), ...o });

async function newProject(): Promise<string> {
  const [row] = await db.sql<{ id: string }[]>`INSERT INTO content_creation_requests (title) VALUES ('legacy') RETURNING id`;
  return row!.id;
}

/** Legacy rows of scene 0, one per URL, image index = position. Returns their ids. */
async function legacyRows(projectId: string, urls: readonly string[]): Promise<string[]> {
  const rows = await db.sql<{ id: string }[]>`
    WITH inserted AS (
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url, details)
      SELECT ${projectId}, 0, i - 1, 'succeeded', u, '{"source": "legacy"}'::jsonb FROM unnest(${urls}::text[]) WITH ORDINALITY AS t(u, i)
      RETURNING id, image_index
    )
    SELECT id FROM inserted ORDER BY image_index`;
  return rows.map((r) => r.id);
}

async function row(id: string) {
  const [r] = await db.sql<any[]>`SELECT * FROM generated_images WHERE id = ${id}`;
  return r;
}

async function filesOf(projectId: string): Promise<string[]> {
  const dir = path.join(root, 'projects', projectId);
  return (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('rehostLegacyImages', () => {
  it('copies every fetchable legacy image into the store and fails the rest with their reason', async () => {
    const project = await newProject();
    const other = await newProject();
    const dataPng = `data:image/png;base64,${smallPng.toString('base64')}`;
    const port = await freePort(); // nothing listens there
    const urls = [
      `${origin}/good.png`,
      `${origin}/good.jpg`,
      `${origin}/missing.png`,
      `${origin}/hang.png`,
      `${origin}/page.png`,
      dataPng,
      'data:image/png;base64,@@not*base64@@',
      `${origin}/boom.png`,
      `http://127.0.0.1:${port}/refused.png`,
      'data:image/png;base64,AAAA',
    ];
    const ids = await legacyRows(project, urls);
    const [otherId] = await legacyRows(other, [`${origin}/good.png`]);
    // Not candidates: already stored, not legacy, not succeeded.
    const [stored] = await db.sql<{ id: string }[]>`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url, storage_key, details)
      VALUES (${project}, 1, 0, 'succeeded', ${`${origin}/good.png`}, 'projects/x/kept.png', '{"source": "legacy"}') RETURNING id`;
    const [generated] = await db.sql<{ id: string }[]>`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
      VALUES (${project}, 1, 1, 'succeeded', ${`${origin}/good.png`}) RETURNING id`;

    const failures: { imageIndex: number; reason: string; reasonKey: string }[] = [];
    const progress: { done: number; rehosted: number; failed: number }[] = [];
    const summary = await rehostLegacyImages(db.sql, store, options({
      projectId: project,
      onFailure: (f) => failures.push({ imageIndex: f.imageIndex, reason: f.reason, reasonKey: f.reasonKey }),
      onProgress: (p) => progress.push(p),
    }));

    expect(summary).toEqual({
      candidates: 10,
      rehosted: 3,
      failed: 7,
      failedByReason: { http_404: 1, http_error: 1, timeout: 1, network: 1, refused_address: 0, not_image: 2, bad_data_url: 1, store_error: 0 },
      superseded: 0,
    });
    expect(progress.at(-1)).toEqual({ done: 10, rehosted: 3, failed: 7 });
    expect(progress.map((p) => p.done)).toEqual([2, 4, 6, 8, 10]);

    for (const [index, served, mime, width, height, ext] of [
      [0, png, 'image/png', 40, 30, 'png'],
      [1, jpeg, 'image/jpeg', 20, 10, 'jpg'],
      [5, smallPng, 'image/png', 8, 6, 'png'],
    ] as const) {
      const r = await row(ids[index]!);
      expect(r.status).toBe('succeeded');
      expect(r.storageKey).toMatch(new RegExp(`^projects/${project}/scene-0/image-${index}-legacy-[0-9a-f]{12}\\.${ext}$`));
      expect(r.imageUrl).toBe(`${BASE}/files/${r.storageKey}`);
      expect([r.mimeType, r.width, r.height, r.bytes, r.sha256]).toEqual([mime, width, height, served.byteLength, sha256(served)]);
      expect(r.details).toMatchObject({ source: 'legacy', originalUrl: urls[index] });
      expect(typeof r.details.rehostedAt).toBe('string');
      expect(r.error).toBeNull();
      const file = await store.open(r.storageKey);
      expect(Buffer.compare(await readFile(file!.path), served)).toBe(0);
    }

    const expectedFailures: [number, string, string][] = [
      [2, 'http_404', 'legacy image could not be fetched: HTTP 404'],
      [3, 'timeout', 'legacy image could not be fetched: timed out after 300 ms'],
      [4, 'not_image', 'legacy image is not an image (text/html, 33 bytes)'],
      [6, 'bad_data_url', 'legacy image is a malformed data: URL'],
      [7, 'http_error', 'legacy image could not be fetched: HTTP 500'],
      [8, 'network', 'legacy image could not be fetched: network error (ECONNREFUSED)'],
      [9, 'not_image', 'legacy image is not an image (image/png, 3 bytes)'],
    ];
    for (const [index, , error] of expectedFailures) {
      const r = await row(ids[index]!);
      expect([r.status, r.error, r.imageUrl, r.storageKey]).toEqual(['failed', error, null, null]);
      expect(r.details).toEqual({ source: 'legacy', originalUrl: urls[index], rehostError: error });
    }
    expect(failures.sort((a, b) => a.imageIndex - b.imageIndex)).toEqual(
      expectedFailures.map(([imageIndex, reasonKey, reason]) => ({ imageIndex, reasonKey, reason })),
    );
    // Only the three rehosted images were stored.
    expect((await filesOf(project)).length).toBe(3);

    // Other rows are untouched: another project's, one already stored, one not from legacy data.
    expect(await row(otherId!)).toMatchObject({ status: 'succeeded', imageUrl: `${origin}/good.png`, storageKey: null });
    expect(await row(stored!.id)).toMatchObject({ storageKey: 'projects/x/kept.png', imageUrl: `${origin}/good.png` });
    expect(await row(generated!.id)).toMatchObject({ storageKey: null, imageUrl: `${origin}/good.png`, details: {} });

    const again = await rehostLegacyImages(db.sql, store, options({ projectId: project }));
    expect([again.candidates, again.rehosted, again.failed]).toEqual([0, 0, 0]);
  });

  it('leaves a row changed during the download as it is, and removes the object it stored', async () => {
    const project = await newProject();
    const [replaced, requeued, failing] = await legacyRows(project, [
      `${origin}/gated/replaced`,
      `${origin}/gated/requeued`,
      `${origin}/gated/failing-404`,
    ]);
    const run = rehostLegacyImages(db.sql, store, options({ projectId: project, timeoutMs: 10_000, batchSize: 10 }));
    await Promise.all(['replaced', 'requeued', 'failing-404'].map((name) => gate(name).arrived.promise));

    // Meanwhile: another URL replaces one, a scene regenerate queues another (keeping its
    // URL until the new image lands), and the third is replaced too.
    const newUrl = `${origin}/good.jpg`;
    await db.sql`UPDATE generated_images SET image_url = ${newUrl} WHERE id = ${replaced!}`;
    await db.sql`UPDATE generated_images SET status = 'queued', generation = generation + 1 WHERE id = ${requeued!}`;
    await db.sql`UPDATE generated_images SET image_url = ${newUrl} WHERE id = ${failing!}`;
    for (const name of ['replaced', 'requeued', 'failing-404']) gate(name).open.resolve();
    const summary = await run;

    expect(summary).toMatchObject({ candidates: 3, rehosted: 0, failed: 0, superseded: 3 });
    expect(await row(replaced!)).toMatchObject({ status: 'succeeded', imageUrl: newUrl, storageKey: null, sha256: null });
    expect(await row(requeued!)).toMatchObject({ status: 'queued', imageUrl: `${origin}/gated/requeued`, storageKey: null, generation: 1 });
    expect(await row(failing!)).toMatchObject({ status: 'succeeded', imageUrl: newUrl, storageKey: null, error: null });
    for (const id of [replaced!, requeued!, failing!]) expect((await row(id)).details).toEqual({ source: 'legacy' });
    expect(await filesOf(project)).toEqual([]);
  });

  it('keeps a private store’s null URL, and leaves a row as it was when the store refuses it', async () => {
    const project = await newProject();
    const [a] = await legacyRows(project, [`${origin}/good.png`]);
    const privateStore: ObjectStore = {
      name: 'private',
      async put(key, bytes, type) {
        await store.put(key, bytes, type);
        return { url: null };
      },
      remove: (keys) => store.remove(keys),
      get: (key) => store.get(key),
    };
    expect(await rehostLegacyImages(db.sql, privateStore, options({ projectId: project }))).toMatchObject({ rehosted: 1, failed: 0 });
    const r = await row(a!);
    expect(r.imageUrl).toBeNull();
    expect(r.storageKey).toMatch(/^projects\/.+\.png$/);
    expect(r.details.originalUrl).toBe(`${origin}/good.png`);

    const second = await newProject();
    const [b] = await legacyRows(second, [`${origin}/good.jpg`]);
    const broken: ObjectStore = { name: 'broken', put: async () => Promise.reject(new Error('disk full')), remove: async () => {}, get: async () => undefined };
    const refused = await rehostLegacyImages(db.sql, broken, options({ projectId: second }));
    expect(refused).toMatchObject({ candidates: 1, rehosted: 0, failed: 1, failedByReason: expect.objectContaining({ store_error: 1 }) });
    expect(await row(b!)).toMatchObject({ status: 'succeeded', imageUrl: `${origin}/good.jpg`, storageKey: null, error: null });
    // It stays a candidate: the next run with a working store rehosts it.
    expect(await rehostLegacyImages(db.sql, store, options({ projectId: second }))).toMatchObject({ candidates: 1, rehosted: 1 });
  });

  it('is idempotent: after a run over every project, the next run finds nothing', async () => {
    // Left by the tests above: the other project's row, and the two rows whose URL changed.
    const first = await rehostLegacyImages(db.sql, store, options({ batchSize: 2 }));
    expect(first).toMatchObject({ candidates: 3, rehosted: 3, failed: 0, superseded: 0 });
    expect(await rehostLegacyImages(db.sql, store, options())).toMatchObject({ candidates: 0, rehosted: 0, failed: 0, superseded: 0 });
  });
});
