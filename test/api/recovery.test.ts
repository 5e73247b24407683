import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { imageKey } from '../../src/generation/storage-key.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ MAX_ATTEMPTS: '2' }, { runner: false });
});
afterAll(() => t.close());

it('a slot whose worker died is queued again, and the object the dead attempt uploaded is removed', async () => {
  const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'orphaned' }, { prompt: 'doomed' }] });
  const id = created.body.id as string;
  // What a worker killed after its upload and before its commit leaves behind.
  await t.db.sql`
    UPDATE generated_images SET status = 'running', locked_by = 'dead-worker', locked_until = now() - interval '1 minute', attempts = 1
    WHERE content_creation_request_id = ${id} AND scene_index = 1`;
  const orphan = imageKey({ projectId: id, sceneIndex: 1, imageIndex: 0, generation: 0, attempt: 1, mimeType: 'image/png' });
  await t.deps.store.put(orphan, new Uint8Array([137, 80, 78, 71]), 'image/png');
  // A slot that already used its attempts fails with the reason instead of looping.
  await t.db.sql`
    UPDATE generated_images SET status = 'running', locked_by = 'dead-worker', locked_until = now() - interval '1 minute', attempts = 2
    WHERE content_creation_request_id = ${id} AND scene_index = 2`;

  t.deps.runner.start();
  const done = await t.waitForProject(id);
  expect(done.status).toBe('partial');
  const [one, two] = done.generatedOutput.scenes;
  expect(one.images[0]).toMatchObject({ status: 'succeeded', attempts: 2 });
  expect(one.imageUrls[0]).toMatch(/image-0-g0-a2\.png$/);
  expect(existsSync(`${t.dataDir}/files/${orphan}`)).toBe(false);
  expect(two.images[0]).toMatchObject({ status: 'failed', error: 'abandoned: its worker stopped responding 2 times' });
});
