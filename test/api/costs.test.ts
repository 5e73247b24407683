import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'sceneworks-costs-')), 'prices.json');
  await writeFile(file, JSON.stringify([{ provider: 'local', model: null, size: '1024x1024', usd: 0.0125 }]));
  t = await startTestApp({ PRICES_FILE: file });
});
afterAll(() => t?.close());

it('each image records what it cost by PRICES_FILE (or null when its price is unknown), and a kept version keeps its cost', async () => {
  const square = await t.call('POST', '/projects', { scenes: [{ prompt: 'a square coin' }], imagesPerScene: 2, aspectRatio: '1:1' });
  const wide = await t.call('POST', '/projects', { scenes: [{ prompt: 'a wide coin' }], aspectRatio: '16:9' });
  await t.waitForProject(square.body.id);
  await t.waitForProject(wide.body.id);
  const images = await t.call('GET', `/images?projectId=${square.body.id}`);
  expect(images.body.items.map((i: { costUsd: number | null }) => i.costUsd)).toEqual([0.0125, 0.0125]);
  // The file prices only 1024x1024; the default for the local renderer (0) fills in the rest.
  const [wideImage] = (await t.call('GET', `/images?projectId=${wide.body.id}`)).body.items;
  expect(wideImage.costUsd).toBe(0);

  expect((await t.call('POST', `/projects/${square.body.id}/scenes/1/regenerate`, { prompt: 'a square coin, again' })).status).toBe(202);
  await t.waitForProject(square.body.id);
  const id = images.body.items[0].id;
  const versions = await t.call('GET', `/images/${id}/versions`);
  expect(versions.body.items).toHaveLength(2);
  expect(versions.body.items.map((v: { costUsd: number | null }) => v.costUsd)).toEqual([0.0125, 0.0125]);

  // The project's total: its two current images and the two versions the regenerate kept.
  const cost = await t.call('GET', `/projects/${square.body.id}/cost`);
  expect(cost.status).toBe(200);
  expect(cost.body).toEqual({ costUsd: 0.05, knownUsd: 0.05, images: 4, unpriced: 0 });
  expect((await t.call('GET', `/projects/${wide.body.id}/cost`)).body).toEqual({ costUsd: 0, knownUsd: 0, images: 1, unpriced: 0 });
});

it('a project with an image whose price is unknown has no total (null), only the known part', async () => {
  const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'priced' }, { prompt: 'not priced' }], aspectRatio: '1:1' });
  await t.waitForProject(created.body.id);
  await t.db.sql`UPDATE generated_images SET cost_usd = NULL WHERE content_creation_request_id = ${created.body.id} AND scene_index = 2`;
  expect((await t.call('GET', `/projects/${created.body.id}/cost`)).body).toEqual({ costUsd: null, knownUsd: 0.0125, images: 2, unpriced: 1 });
  expect((await t.call('GET', '/projects/00000000-0000-4000-8000-00000000abcd/cost')).status).toBe(404);
});
