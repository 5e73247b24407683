import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { gatedLocalProvider, until } from '../support/gated-provider.ts';

const gated = gatedLocalProvider();
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ GENERATION_CONCURRENCY: '4' }, { providers: gated.providers });
});
afterAll(async () => {
  gated.open();
  await t.close();
});

async function completedProject(scenes: number, imagesPerScene: number) {
  const created = await t.call('POST', '/projects', {
    scenes: Array.from({ length: scenes }, (_, i) => ({ prompt: `scene ${i + 1}`, shot: i })),
    imagesPerScene,
  });
  expect(created.status).toBe(202);
  return t.waitForProject(created.body.id);
}

describe('POST /projects/:id/scenes/:sceneIndex/regenerate', () => {
  it('changes only that scene, and serves the old image until the new one lands', async () => {
    const before = await completedProject(6, 2);
    const oldScene3 = before.generatedOutput.scenes[2];

    gated.close();
    const res = await t.call('POST', `/projects/${before.id}/scenes/3/regenerate`, { prompt: 'scene 3, at night' });
    expect(res.status).toBe(202);
    await until(() => gated.waiting() === 2, 'both slots of scene 3 in flight');

    const during = (await t.call('GET', `/projects/${before.id}`)).body;
    expect(during.status).toBe('running');
    const scene3 = during.generatedOutput.scenes[2];
    expect(scene3.prompt).toBe('scene 3, at night');
    expect(scene3.shot).toBe(2);
    expect(scene3.imageUrls).toEqual(oldScene3.imageUrls);
    expect(scene3.images.map((i: any) => i.status)).toEqual(['running', 'running']);
    expect(scene3.images.map((i: any) => i.url)).toEqual(oldScene3.imageUrls);
    // The old objects are still served while the new ones are made.
    for (const url of oldScene3.imageUrls) expect((await t.app.request(new URL(url).pathname)).status).toBe(200);

    gated.open();
    const after = await t.waitForProject(before.id);
    expect(after.status).toBe('completed');
    const newScene3 = after.generatedOutput.scenes[2];
    expect(newScene3.imageUrls).toHaveLength(2);
    for (const [i, url] of newScene3.imageUrls.entries()) {
      expect(url).not.toBe(oldScene3.imageUrls[i]);
      expect(url).toMatch(/image-\d-g1-a1\.png$/);
      expect((await t.app.request(new URL(url).pathname)).status).toBe(200);
    }
    // The replaced images are kept as versions (IMAGE_VERSIONS_KEPT), their objects still served.
    for (const url of oldScene3.imageUrls) expect((await t.app.request(new URL(url).pathname)).status).toBe(200);
    const versions = await t.db.sql<{ storageKey: string; version: number }[]>`
      SELECT storage_key, version FROM image_versions WHERE content_creation_request_id = ${before.id} AND scene_index = 3 ORDER BY image_index`;
    expect(versions.map((v) => v.storageKey.split('/').pop())).toEqual(oldScene3.imageUrls.map((u: string) => u.split('/').pop()));
    expect(versions.map((v) => v.version)).toEqual([1, 1]);
    // Every other scene is exactly as it was.
    for (const i of [0, 1, 3, 4, 5]) expect(after.generatedOutput.scenes[i]).toEqual(before.generatedOutput.scenes[i]);

    const [row] = await t.db.sql<{ fullPrompt: string; generation: number }[]>`
      SELECT full_prompt, generation FROM generated_images WHERE content_creation_request_id = ${before.id} AND scene_index = 3 AND image_index = 0`;
    expect(row).toEqual({ fullPrompt: 'scene 3, at night', generation: 1 });
  });

  it('grows and shrinks the slots of a scene with imagesPerScene', async () => {
    const before = await completedProject(2, 3);
    const grown = await t.call('POST', `/projects/${before.id}/scenes/1/regenerate`, { imagesPerScene: 5 });
    expect(grown.body.generatedOutput.scenes[0].imageUrls).toHaveLength(5);
    let after = await t.waitForProject(before.id);
    expect(after.generatedOutput.scenes[0].imageUrls.filter(Boolean)).toHaveLength(5);

    await t.call('POST', `/projects/${before.id}/scenes/1/regenerate`, { imagesPerScene: 1 });
    after = await t.waitForProject(before.id);
    expect(after.generatedOutput.scenes[0].imageUrls).toHaveLength(1);
    expect(after.generatedOutput.scenes[1]).toEqual(before.generatedOutput.scenes[1]);
    const [{ n }] = (await t.db.sql`SELECT count(*)::int AS n FROM generated_images WHERE content_creation_request_id = ${before.id}`) as unknown as [{ n: number }];
    expect(n).toBe(1 + 3);
    expect(after.progress.total).toBe(4);
    // The surplus slots' objects, and those of their kept versions, went with their rows: the
    // scene's folder holds exactly its one slot's image and that slot's versions.
    const { readdir } = await import('node:fs/promises');
    const kept = await t.db.sql<{ storageKey: string }[]>`
      SELECT storage_key FROM generated_images WHERE content_creation_request_id = ${before.id} AND scene_index = 1
      UNION ALL SELECT storage_key FROM image_versions WHERE content_creation_request_id = ${before.id} AND scene_index = 1`;
    await until(() => t.deps.runner.inFlight() === 0, 'every claim to finish');
    expect((await readdir(`${t.dataDir}/files/projects/${before.id}/scene-1`)).sort()).toEqual(kept.map((k) => k.storageKey.split('/').pop()).sort());
    expect(kept).toHaveLength(3); // image 0: the current one and the two it replaced
  });

  it('a regenerate while the previous one is still in flight fences the old work out', async () => {
    const before = await completedProject(1, 1);
    gated.close();
    await t.call('POST', `/projects/${before.id}/scenes/1/regenerate`, { prompt: 'first try' });
    await until(() => gated.waiting() === 1, 'first regenerate in flight');
    await t.call('POST', `/projects/${before.id}/scenes/1/regenerate`, { prompt: 'second try' });
    await until(() => gated.waiting() === 2, 'second regenerate in flight');
    gated.open();
    const after = await t.waitForProject(before.id);
    const [row] = await t.db.sql<{ generation: number; fullPrompt: string; storageKey: string }[]>`
      SELECT generation, full_prompt, storage_key FROM generated_images WHERE content_creation_request_id = ${before.id}`;
    expect(row!.generation).toBe(2);
    expect(row!.fullPrompt).toBe('second try');
    expect(after.generatedOutput.scenes[0].imageUrls[0]).toMatch(/image-0-g2-a1\.png$/);
    // The first regenerate's image was discarded, not left behind (once its claim is done).
    await until(() => t.deps.runner.inFlight() === 0, 'the superseded claim to finish');
    const { readdir } = await import('node:fs/promises');
    const files = await readdir(`${t.dataDir}/files/projects/${before.id}/scene-1`);
    const versions = await t.db.sql<{ storageKey: string }[]>`SELECT storage_key FROM image_versions WHERE content_creation_request_id = ${before.id}`;
    // The current image and the one the two regenerates replaced (kept as a version); the
    // superseded first regenerate's image went, it was never current.
    expect(files.sort()).toEqual([row!.storageKey, ...versions.map((v) => v.storageKey)].map((k) => k.split('/').pop()).sort());
    expect(versions).toHaveLength(1);
  });
});
