import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';
import { gatedLocalProvider, until } from '../support/gated-provider.ts';

const gated = gatedLocalProvider();
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({}, { providers: gated.providers });
});
afterAll(async () => {
  gated.open();
  await t.close();
});

/** Every file the store holds for a project (the store listed, not the rows). */
async function storeFiles(app: TestApp, projectId: string): Promise<string[]> {
  const entries = await readdir(`${app.dataDir}/files/projects/${projectId}`, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((e) => /\.(png|jpg|webp|gif|partial)$/.test(e)).sort();
}
const count = async (sql: TestApp['db']['sql'], table: string, projectId: string) =>
  ((await sql`SELECT count(*)::int AS n FROM ${sql(table)} WHERE ${sql(table === 'content_creation_requests' ? 'id' : 'content_creation_request_id')} = ${projectId}`) as unknown as [{ n: number }])[0].n;

describe('DELETE /images/:id', () => {
  it('removes the image, its versions and their objects; the slot stays, empty, until generate refills it', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'a' }, { prompt: 'b' }], imagesPerScene: 2 });
    const id = created.body.id;
    await t.waitForProject(id);
    await t.call('POST', `/projects/${id}/scenes/1/regenerate`, { prompt: 'a again' });
    const before = await t.waitForProject(id);
    const image = before.generatedOutput.scenes[0].images[1];
    expect((await storeFiles(t, id)).filter((f) => f.startsWith('scene-1/image-1'))).toHaveLength(2); // current + one version

    expect((await t.call('DELETE', `/images/${image.id}`)).status).toBe(204);
    const after = (await t.call('GET', `/projects/${id}`)).body;
    const scene = after.generatedOutput.scenes[0];
    expect(scene.imageUrls).toEqual([before.generatedOutput.scenes[0].imageUrls[0], null]);
    expect(scene.images[1]).toMatchObject({ imageIndex: 1, status: 'failed', error: 'deleted', url: null });
    expect(scene.images[1].id).not.toBe(image.id);
    expect(after.progress).toEqual({ total: 4, queued: 0, running: 0, succeeded: 3, failed: 1 });
    expect(after.status).toBe('partial');
    expect((await storeFiles(t, id)).filter((f) => f.startsWith('scene-1/image-1'))).toEqual([]);
    expect(await t.db.sql`SELECT 1 FROM image_versions WHERE content_creation_request_id = ${id} AND scene_index = 1 AND image_index = 1`).toHaveLength(0);
    // The deleted image's id names nothing any more; deleting again is a 404.
    expect((await t.call('GET', `/images/${image.id}/versions`)).status).toBe(404);
    expect((await t.call('DELETE', `/images/${image.id}`)).status).toBe(404);
    // Other images are untouched.
    expect(after.generatedOutput.scenes[1]).toEqual(before.generatedOutput.scenes[1]);

    expect((await t.call('POST', `/projects/${id}/generate`)).status).toBe(202);
    const refilled = await t.waitForProject(id);
    expect(refilled.status).toBe('completed');
    expect(refilled.generatedOutput.scenes[0].imageUrls[1]).toMatch(/\.png$/);
  });

  it('the legacy fallback never brings a deleted image back', async () => {
    const id = '7d1d7d7a-1111-4a4a-8b8b-000000000001';
    await t.db.sql`INSERT INTO content_creation_requests (id, user_id, generated_output)
      VALUES (${id}, ${t.deps.singleOwner.ownerId}, ${t.db.sql.json({ scenes: [{ prompt: 'legacy', imageUrls: ['https://old.test/1.png'] }] })})`;
    await t.call('POST', `/projects/${id}/scenes/1/regenerate`);
    const done = await t.waitForProject(id);
    await t.call('DELETE', `/images/${done.generatedOutput.scenes[0].images[0].id}`);
    const after = (await t.call('GET', `/projects/${id}`)).body;
    expect(after.generatedOutput.scenes[0].imageUrls).toEqual([null]);
  });

  it('a regenerate in flight for the slot is cancelled: its image never lands, its object is removed', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }] });
    const id = created.body.id;
    const done = await t.waitForProject(id);
    gated.close();
    await t.call('POST', `/projects/${id}/scenes/1/regenerate`, { prompt: 'y' });
    await until(() => gated.waiting() === 1, 'the regenerate in flight');
    expect((await t.call('DELETE', `/images/${done.generatedOutput.scenes[0].images[0].id}`)).status).toBe(204);
    gated.open();
    await until(() => t.deps.runner.inFlight() === 0, 'the claim to finish');
    const after = (await t.call('GET', `/projects/${id}`)).body;
    expect(after.generatedOutput.scenes[0].images[0]).toMatchObject({ status: 'failed', error: 'deleted', url: null });
    expect(await storeFiles(t, id)).toEqual([]);
  });
});

describe('DELETE /projects/:id', () => {
  it('removes the project, its rows, versions, keys and every stored object; a 404 after', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'p' }, { prompt: 'q' }], imagesPerScene: 2 }, { 'idempotency-key': 'delete-me' });
    const id = created.body.id;
    await t.waitForProject(id);
    await t.call('POST', `/projects/${id}/scenes/2/regenerate`, { prompt: 'q2' }, { 'idempotency-key': 'delete-me-too' });
    await t.waitForProject(id);
    expect(await storeFiles(t, id)).toHaveLength(6);

    expect((await t.call('DELETE', `/projects/${id}`)).status).toBe(204);
    expect((await t.call('GET', `/projects/${id}`)).status).toBe(404);
    expect((await t.call('DELETE', `/projects/${id}`)).status).toBe(404);
    for (const table of ['content_creation_requests', 'generated_images', 'image_versions']) expect(await count(t.db.sql, table, id), table).toBe(0);
    expect(await t.db.sql`SELECT 1 FROM idempotency_keys WHERE project_id = ${id}`).toHaveLength(0);
    expect(await storeFiles(t, id)).toEqual([]);
  });

  it('slots running on another replica leave nothing behind when they finish', async () => {
    // This app only deletes; the other replica (t) generates, held at the provider.
    const other = await startTestApp({ DATA_DIR: t.dataDir }, { db: t.db, runner: false });
    try {
      gated.close();
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'r' }, { prompt: 's' }], imagesPerScene: 2 });
      const id = created.body.id;
      await until(() => gated.waiting() === 4, 'every slot at the provider');
      expect((await other.call('DELETE', `/projects/${id}`)).status).toBe(204);
      gated.open();
      await until(() => t.deps.runner.inFlight() === 0, 'the claims to finish');
      expect(await storeFiles(t, id)).toEqual([]);
      expect(await count(t.db.sql, 'generated_images', id)).toBe(0);
    } finally {
      gated.open();
      await other.close();
    }
  });
});

describe('PATCH /projects/:id/scenes/:sceneIndex', () => {
  const patch = (path: string, body: unknown, type = 'application/merge-patch+json') => t.call('PATCH', path, body, { 'content-type': type });

  it('merges into the stored scene without regenerating; images from another prompt are stale until regenerated', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'cat', narration: 'old', shot: { lens: 35, angle: 'low' } }, { prompt: 'dog' }], imagesPerScene: 2 });
    const id = created.body.id;
    const before = await t.waitForProject(id);
    const res = await patch(`/projects/${id}/scenes/1`, JSON.parse('{"prompt":"a black cat","narration":null,"shot":{"angle":"high"},"__proto__":{"kept":true}}'));
    expect(res.status).toBe(200);
    const scene = res.body.generatedOutput.scenes[0];
    expect(scene).toMatchObject({ prompt: 'a black cat', shot: { lens: 35, angle: 'high' }, staleImages: 2 });
    expect(scene).not.toHaveProperty('narration');
    expect(Object.hasOwn(scene, '__proto__')).toBe(true);
    expect(scene.images.map((i: any) => i.stale)).toEqual([true, true]);
    expect(scene.imageUrls).toEqual(before.generatedOutput.scenes[0].imageUrls); // nothing regenerated
    expect(res.body.generatedOutput.scenes[1]).toEqual(before.generatedOutput.scenes[1]);
    expect((await t.call('GET', `/images/${scene.images[0].id}`)).status).not.toBe(500);

    // A regenerate with no new prompt makes fresh images from the edited one: no longer stale.
    await t.call('POST', `/projects/${id}/scenes/1/regenerate`);
    const after = await t.waitForProject(id);
    expect(after.generatedOutput.scenes[0].staleImages).toBe(0);
    const [row] = await t.db.sql<{ fullPrompt: string }[]>`SELECT full_prompt FROM generated_images WHERE content_creation_request_id = ${id} AND scene_index = 1 AND image_index = 0`;
    expect(row!.fullPrompt).toBe('a black cat');
  });

  it('refuses what an edit may not change, a prompt removed or empty, and a body that is not an object', async () => {
    const id = (await t.call('POST', '/projects', { scenes: [{ prompt: 'p' }] })).body.id;
    for (const body of [{ index: 4 }, { imageUrls: [] }, { images: [] }, { staleImages: 0 }, { prompt: null }, { prompt: '  ' }, { prompt: 'x'.repeat(4001) }, [1]]) {
      const res = await patch(`/projects/${id}/scenes/1`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect((await patch(`/projects/${id}/scenes/9`, { narration: 'n' })).status).toBe(404);
    expect((await patch(`/projects/${id}/scenes/1`, 'narration=n', 'text/plain')).status).toBe(415);
    expect((await patch(`/projects/${id}/scenes/1`, { narration: 'plain json works too' }, 'application/json')).status).toBe(200);
    const [{ output }] = (await t.db.sql`SELECT generated_output AS output FROM content_creation_requests WHERE id = ${id}`) as unknown as [{ output: any }];
    expect(output.scenes[0]).toEqual({ prompt: 'p', narration: 'plain json works too' });
  });
});
