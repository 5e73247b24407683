import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../src/storage/store.ts';
import { startTestApp, storedObjectKeys, type TestApp } from '../support/app.ts';
import { until } from '../support/gated-provider.ts';

/**
 * Removing objects is held back until the test lets it go: the removal of a shrunk scene's
 * slots (after its commit) is still in flight when the scene grows back and its new slots
 * store their images.
 */
function heldRemovals() {
  let gate = Promise.withResolvers<void>();
  const pending: string[][] = [];
  return {
    wrap: (store: ObjectStore): ObjectStore =>
      Object.assign(Object.create(store) as ObjectStore, {
        async remove(keys: readonly string[]) {
          pending.push([...keys]);
          await gate.promise;
          return store.remove(keys);
        },
      }),
    pending: () => pending.flat(),
    release: () => gate.resolve(),
    hold: () => void (gate = Promise.withResolvers<void>()),
  };
}

const removals = heldRemovals();
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({}, { wrapStore: removals.wrap });
});
afterAll(async () => {
  removals.release();
  await t.close();
});

const filesOf = (projectId: string) => storedObjectKeys(t.dataDir, projectId);

describe('a scene shrunk and grown back while the removed slots\' objects are still being deleted', () => {
  it('gives the new slots keys of their own: the late removal takes nothing they stored', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'a lighthouse' }], imagesPerScene: 3 });
    expect(created.status).toBe(202);
    const id = created.body.id;
    await t.waitForProject(id);

    // Shrink to one image: slots 1 and 2 go, their objects' removal waits at the gate.
    const shrink = t.call('POST', `/projects/${id}/scenes/1/regenerate`, { imagesPerScene: 1 });
    await until(async () => removals.pending().length === 2, 'the removal of the two surplus objects to start');
    const removed = removals.pending();
    // Grow back to three, same prompt: slots 1 and 2 are created again and generate.
    const grow = await t.call('POST', `/projects/${id}/scenes/1/regenerate`, { imagesPerScene: 3 });
    expect(grow.status).toBe(202);
    const done = await t.waitForProject(id);
    expect(done.status).toBe('completed');

    removals.release();
    expect((await shrink).status).toBe(202);
    const rows = await t.db.sql<{ imageIndex: number; storageKey: string; status: string }[]>`
      SELECT image_index, storage_key, status FROM generated_images WHERE content_creation_request_id = ${id} ORDER BY image_index`;
    expect(rows.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    for (const row of rows) expect(removed).not.toContain(row.storageKey);
    const versions = await t.db.sql<{ storageKey: string }[]>`SELECT storage_key FROM image_versions WHERE content_creation_request_id = ${id}`;
    // Every row's object is there, and the removed ones are gone.
    expect(await filesOf(id)).toEqual([...rows, ...versions].map((r) => r.storageKey).sort());
    const served = (await t.call('GET', `/projects/${id}`)).body.generatedOutput.scenes[0].imageUrls;
    expect(served).toHaveLength(3);
    for (const url of served) expect(url).not.toBeNull();
  });
});
