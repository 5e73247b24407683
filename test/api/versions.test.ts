import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { gatedLocalProvider, until } from '../support/gated-provider.ts';
import { sseReader } from '../support/sse.ts';

const gated = gatedLocalProvider();
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ IMAGE_VERSIONS_KEPT: '3' }, { providers: gated.providers });
});
afterAll(async () => {
  gated.open();
  await t.close();
});

async function oneImageProject(prompt: string) {
  const created = await t.call('POST', '/projects', { title: 'versions', scenes: [{ prompt }] });
  const done = await t.waitForProject(created.body.id);
  return { projectId: done.id as string, imageId: done.generatedOutput.scenes[0].images[0].id as string };
}
async function regenerate(projectId: string, prompt: string) {
  expect((await t.call('POST', `/projects/${projectId}/scenes/1/regenerate`, { prompt })).status).toBe(202);
  return t.waitForProject(projectId);
}
const versionsOf = async (imageId: string) => (await t.call('GET', `/images/${imageId}/versions`)).body.items as any[];
async function filesOf(projectId: string) {
  return (await readdir(`${t.dataDir}/files/projects/${projectId}/scene-1`).catch(() => [] as string[])).sort();
}
/** The objects scene 1's rows and versions name. */
async function storedKeys(projectId: string) {
  const rows = await t.db.sql<{ storageKey: string }[]>`
    SELECT storage_key FROM generated_images WHERE content_creation_request_id = ${projectId} AND scene_index = 1 AND storage_key IS NOT NULL
    UNION ALL SELECT storage_key FROM image_versions WHERE content_creation_request_id = ${projectId} AND scene_index = 1`;
  return rows.map((r) => r.storageKey.split('/').pop()!).sort();
}

describe('versions', () => {
  it('a regenerate keeps the replaced image: newest first, the current one flagged, older prompts stale', async () => {
    const { projectId, imageId } = await oneImageProject('first');
    const first = await versionsOf(imageId);
    expect(first.map((v) => [v.version, v.current, v.prompt])).toEqual([[1, true, 'first']]);
    await regenerate(projectId, 'second');
    const done = await regenerate(projectId, 'third');
    const items = await versionsOf(imageId);
    expect(items.map((v) => [v.version, v.current, v.prompt, v.stale])).toEqual([
      [3, true, 'third', false],
      [2, false, 'second', true],
      [1, false, 'first', true],
    ]);
    expect(items[0].url).toBe(done.generatedOutput.scenes[0].imageUrls[0]);
    expect(new Set(items.map((v) => v.id)).size).toBe(3);
    // Every version's object is still there, and every object is a version's.
    for (const v of items) expect((await t.app.request(new URL(v.url).pathname)).status).toBe(200);
    expect(await filesOf(projectId)).toEqual(await storedKeys(projectId));
  });

  it('keeps IMAGE_VERSIONS_KEPT versions per slot; older ones go with their objects', async () => {
    const { projectId, imageId } = await oneImageProject('v1');
    for (const prompt of ['v2', 'v3', 'v4', 'v5', 'v6']) await regenerate(projectId, prompt);
    await until(async () => (await filesOf(projectId)).length === 4, 'pruned objects to be removed');
    expect((await versionsOf(imageId)).map((v) => v.version)).toEqual([6, 5, 4, 3]);
    expect(await filesOf(projectId)).toEqual(await storedKeys(projectId));
  });

  it('restoring a version makes it current at once (the current one becomes a version), with an image event; the next image is numbered after all', async () => {
    const created = await t.call('POST', '/projects', { title: 'restore', scenes: [{ prompt: 'old' }, { prompt: 'other scene' }] });
    const projectId = (await t.waitForProject(created.body.id)).id as string;
    await regenerate(projectId, 'new');
    const imageId = (await t.call('GET', `/projects/${projectId}`)).body.generatedOutput.scenes[0].images[0].id as string;
    const [, old] = await versionsOf(imageId);
    // Scene 2 regenerating keeps the project running, so its event stream stays open.
    gated.close();
    expect((await t.call('POST', `/projects/${projectId}/scenes/2/regenerate`)).status).toBe(202);
    await until(() => gated.waiting() === 1, 'scene 2 in flight');
    const res = await t.app.request(`/projects/${projectId}/events`);
    const events = sseReader(res.body!);
    expect((await events.next())?.event).toBe('progress');
    await events.next();
    await events.next(); // the two current images

    const restored = await t.call('POST', `/images/${imageId}/versions/1/restore`);
    expect(restored.status).toBe(200);
    expect(restored.body).toMatchObject({ id: imageId, version: 1, url: old.url, prompt: 'old', stale: true, status: 'succeeded' });
    let event = await events.next();
    while (event && event.event !== 'image') event = await events.next();
    expect(event).toMatchObject({ event: 'image', data: { id: imageId, url: old.url, stale: true } });
    await events.cancel();
    gated.open();
    await t.waitForProject(projectId);

    const project = (await t.call('GET', `/projects/${projectId}`)).body;
    expect(project.generatedOutput.scenes[0].imageUrls).toEqual([old.url]);
    expect(project.generatedOutput.scenes[0].staleImages).toBe(1);
    expect((await versionsOf(imageId)).map((v) => [v.version, v.current])).toEqual([
      [2, false],
      [1, true],
    ]);
    const next = await regenerate(projectId, 'newest');
    expect(next.generatedOutput.scenes[0].images[0]).toMatchObject({ stale: false });
    expect((await versionsOf(imageId)).map((v) => [v.version, v.current])).toEqual([
      [3, true],
      [2, false],
      [1, false],
    ]);
    expect(await filesOf(projectId)).toEqual(await storedKeys(projectId));
  });

  it('a restore while a regenerate is in flight wins: the late worker can never make its image current', async () => {
    const { projectId, imageId } = await oneImageProject('keep me');
    await regenerate(projectId, 'second');
    gated.close();
    expect((await t.call('POST', `/projects/${projectId}/scenes/1/regenerate`, { prompt: 'late' })).status).toBe(202);
    await until(() => gated.waiting() === 1, 'the regenerate to reach the provider');
    expect((await t.call('POST', `/images/${imageId}/versions/1/restore`)).status).toBe(200);
    gated.open();
    await until(() => t.deps.runner.inFlight() === 0, 'the late claim to finish');
    const items = await versionsOf(imageId);
    expect(items.find((v) => v.current)).toMatchObject({ version: 1, prompt: 'keep me' });
    expect(items.map((v) => v.version)).toEqual([2, 1]);
    // The late image's object was removed by its worker: nothing on disk but the two versions.
    expect(await filesOf(projectId)).toEqual(await storedKeys(projectId));
    expect((await t.call('GET', `/projects/${projectId}`)).body.status).toBe('completed');
  });

  it('an unknown version or image is a 404', async () => {
    const { imageId } = await oneImageProject('only one');
    expect((await t.call('POST', `/images/${imageId}/versions/7/restore`)).status).toBe(404);
    expect((await t.call('GET', `/images/00000000-0000-4000-8000-00000000abcd/versions`)).status).toBe(404);
    expect((await t.call('POST', `/images/${imageId}/versions/0/restore`)).status).toBe(404);
  });
});
