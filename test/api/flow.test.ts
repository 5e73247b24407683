import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_SIZES } from '../../src/generation/aspect-ratio.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ GENERATION_CONCURRENCY: '8' });
});
afterAll(() => t.close());

/** Fetches an image URL of the local store through the app and returns its PNG size. */
async function pngSize(url: string) {
  const path = new URL(url).pathname;
  const res = await t.app.request(path);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('image/png');
  const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
  return { format: meta.format, width: meta.width, height: meta.height };
}

describe('POST /projects → completed', () => {
  it('generates every image of every scene as a real PNG of the aspect ratio, and keeps what was sent', async () => {
    const body = {
      title: 'Coffee shop explainer',
      scenes: Array.from({ length: 6 }, (_, i) => ({ prompt: `Scene ${i + 1}: a barista, take ${i}`, narration: `line ${i}`, extra: { n: i } })),
      imagesPerScene: 2,
      aspectRatio: '9:16',
      style: 'watercolor',
      metadata: { campaign: 'q4', nested: { a: [1, 2, 3] } },
    };
    const created = await t.call('POST', '/projects', body);
    expect(created.status).toBe(202);
    expect(created.body.status).toBe('queued');
    expect(created.headers.get('location')).toBe(`/projects/${created.body.id}`);
    expect(created.body.progress).toEqual({ total: 12, queued: 12, running: 0, succeeded: 0, failed: 0 });

    const done = await t.waitForProject(created.body.id);
    expect(done.status).toBe('completed');
    expect(done.title).toBe('Coffee shop explainer');
    expect(done.metadata).toEqual(body.metadata);
    expect(done.settings).toEqual({ imagesPerScene: 2, aspectRatio: '9:16', style: 'watercolor', provider: 'local', model: null });
    expect(done.progress).toEqual({ total: 12, queued: 0, running: 0, succeeded: 12, failed: 0 });

    const scenes = done.generatedOutput.scenes;
    expect(scenes).toHaveLength(6);
    const urls = new Set<string>();
    for (const [i, scene] of scenes.entries()) {
      expect(scene).toMatchObject(body.scenes[i]!);
      expect(scene.imageUrls).toHaveLength(2);
      for (const image of scene.images) {
        expect(image).toMatchObject({ status: 'succeeded', width: 768, height: 1344, mimeType: 'image/png', provider: 'local', attempts: 1, error: null });
        expect(image.bytes).toBeGreaterThan(1000);
        expect(scene.imageUrls[image.imageIndex]).toBe(image.url);
        urls.add(image.url);
      }
    }
    expect(urls.size).toBe(12);
    for (const url of urls) expect(await pngSize(url)).toEqual({ format: 'png', ...IMAGE_SIZES['9:16'] });

    const [row] = await t.db.sql<{ fullPrompt: string; sha256: string; storageKey: string }[]>`
      SELECT full_prompt, sha256, storage_key FROM generated_images WHERE content_creation_request_id = ${done.id} AND scene_index = 1 AND image_index = 0`;
    expect(row!.fullPrompt).toBe('Scene 1: a barista, take 0. Style: watercolor');
    expect(row!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.storageKey).toBe(`projects/${done.id}/scene-1/image-0-g0-a1.png`);

    const legacyPath = await t.call('GET', `/project/${done.id}`);
    expect(legacyPath.status).toBe(200);
    expect(legacyPath.body.generatedOutput).toEqual(done.generatedOutput);
  });

  it('uses each aspect ratio of the size table', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'square' }], aspectRatio: '1:1' });
    const done = await t.waitForProject(created.body.id);
    expect(await pngSize(done.generatedOutput.scenes[0].imageUrls[0])).toEqual({ format: 'png', width: 1024, height: 1024 });
  });

  it('runs 200 slots at concurrency 32 into exactly 200 rows and 200 distinct stored objects', async () => {
    // Its own database: no other runner may take a share of these slots.
    const big = await startTestApp({ GENERATION_CONCURRENCY: '32' });
    try {
      const created = await big.call('POST', '/projects', {
        scenes: Array.from({ length: 50 }, (_, i) => ({ prompt: `scene ${i}` })),
        imagesPerScene: 4,
        aspectRatio: '1:1',
      });
      const done = await big.waitForProject(created.body.id, 120_000);
      expect(done.status).toBe('completed');
      const [counts] = await big.db.sql<{ rows: number; keys: number; urls: number; slots: number }[]>`
        SELECT count(*)::int AS rows, count(DISTINCT storage_key)::int AS keys, count(DISTINCT image_url)::int AS urls,
               count(DISTINCT (scene_index, image_index))::int AS slots
        FROM generated_images WHERE content_creation_request_id = ${done.id} AND status = 'succeeded'`;
      expect(counts).toEqual({ rows: 200, keys: 200, urls: 200, slots: 200 });
      const { readdir } = await import('node:fs/promises');
      const files = await readdir(`${big.dataDir}/files/projects/${done.id}`, { recursive: true });
      expect(files.filter((f) => f.endsWith('.png'))).toHaveLength(200);
    } finally {
      await big.close();
    }
  });
});

describe('files', () => {
  it('serves with ETag and immutable caching, answers 304 to a matching If-None-Match', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'etag' }] });
    const done = await t.waitForProject(created.body.id);
    const path = new URL(done.generatedOutput.scenes[0].imageUrls[0]).pathname;
    const first = await t.app.request(path);
    expect(first.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^".+"$/);
    const again = await t.app.request(path, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
  });

  it('never leaves its folder', async () => {
    for (const path of ['/files/../package.json', '/files/%2e%2e/%2e%2e/package.json', '/files/projects/..%2f..%2fpackage.json', '/files/.%2e/x.png', '/files/', '/files/nope.png']) {
      const res = await t.call('GET', path);
      expect(res.status, path).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
  });
});
