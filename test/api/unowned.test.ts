import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * An adopted legacy database: projects whose user_id is null. In single-owner mode (AUTH=none)
 * they are the owner's through every route that names a project or an image. The routes come
 * from the app itself: a route added without a case here fails this test.
 */
let t: TestApp;
let project: string;
beforeAll(async () => {
  t = await startTestApp();
  project = randomUUID();
  // Scene 1 has a legacy image: its row, made when the scene's other slot is queued, has no owner either.
  const legacy = { scenes: [{ prompt: 'legacy one', imageUrls: ['https://old.test/legacy.png'] }, { prompt: 'legacy two' }] };
  await t.db.sql`
    INSERT INTO content_creation_requests (id, user_id, title, generated_output, settings)
    VALUES (${project}, NULL, 'adopted', ${t.db.sql.json(legacy)}, ${t.db.sql.json({ imagesPerScene: 2, aspectRatio: '1:1' })})`;
  expect((await t.call('POST', `/projects/${project}/generate`)).status).toBe(202);
  await t.waitForProject(project);
  // A kept version, for the version routes.
  expect((await t.call('POST', `/projects/${project}/scenes/2/regenerate`, { prompt: 'legacy two again' })).status).toBe(202);
  await t.waitForProject(project);
});
afterAll(() => t.close());

/** A generated image with a kept version, and the legacy image (no owner on its row). */
type Ids = { image: string; version: number; legacy: string };
/** In the order they run: reads first, then changes, the project's deletion last. */
const CASES: [route: string, call: (ids: Ids) => { method: string; path: string; body?: unknown }, expected: number][] = [
  ['GET /projects/:id', () => ({ method: 'GET', path: `/projects/${project}` }), 200],
  ['GET /project/:id', () => ({ method: 'GET', path: `/project/${project}` }), 200],
  ['GET /projects/:id/archive', () => ({ method: 'GET', path: `/projects/${project}/archive` }), 200],
  ['GET /projects/:id/events', () => ({ method: 'GET', path: `/projects/${project}/events` }), 200],
  ['GET /projects/:id/webhook-deliveries', () => ({ method: 'GET', path: `/projects/${project}/webhook-deliveries` }), 200],
  ['GET /projects/:id/cost', () => ({ method: 'GET', path: `/projects/${project}/cost` }), 200],
  ['GET /images/:id', ({ legacy }) => ({ method: 'GET', path: `/images/${legacy}` }), 200],
  ['GET /images/:id/download', ({ image }) => ({ method: 'GET', path: `/images/${image}/download` }), 200],
  ['GET /images/:id/versions', ({ image }) => ({ method: 'GET', path: `/images/${image}/versions` }), 200],
  ['PATCH /images/:id', ({ legacy }) => ({ method: 'PATCH', path: `/images/${legacy}`, body: { favorite: true } }), 200],
  ['PATCH /projects/:id/scenes/:sceneIndex', () => ({ method: 'PATCH', path: `/projects/${project}/scenes/1`, body: { narration: 'edited' } }), 200],
  ['POST /images/:id/versions/:version/restore', ({ image, version }) => ({ method: 'POST', path: `/images/${image}/versions/${version}/restore` }), 200],
  ['POST /projects/:id/scenes/:sceneIndex/regenerate', () => ({ method: 'POST', path: `/projects/${project}/scenes/1/regenerate`, body: {} }), 202],
  ['POST /projects/:id/generate', () => ({ method: 'POST', path: `/projects/${project}/generate` }), 202],
  ['DELETE /images/:id', ({ image }) => ({ method: 'DELETE', path: `/images/${image}` }), 204],
  ['DELETE /projects/:id', () => ({ method: 'DELETE', path: `/projects/${project}` }), 204],
];
/** Routes that name no project or image: public ones, the owner's own lists (checked below), creating, metrics. */
const NOT_ABOUT_ONE = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /openapi.json',
  'GET /docs',
  'GET /docs/*.js',
  'GET /files/*',
  'GET /',
  'GET /gallery',
  'GET /p/:id',
  'GET /assets/:name',
  'GET /projects',
  'GET /images',
  'POST /projects',
  'GET /metrics',
]);

describe('projects with no owner (an adopted legacy database), AUTH=none', () => {
  it('has a case for every route that names a project or an image', () => {
    const routes = [...new Set(t.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/^\/docs\/scalar-[^/]+\.js$/, '/docs/*.js')}`))];
    expect(routes.filter((route) => !NOT_ABOUT_ONE.has(route) && !CASES.some(([r]) => r === route))).toEqual([]);
  });

  it("are the single owner's on every route, and listed in the owner's lists; the project keeps no owner", async () => {
    const slot = async (scene: number, image: number) =>
      (await t.db.sql<{ id: string; ownerId: string | null; imageUrl: string | null }[]>`
        SELECT id, owner_id, image_url FROM generated_images WHERE content_creation_request_id = ${project} AND scene_index = ${scene} AND image_index = ${image}`)[0]!;
    const legacy = await slot(1, 0);
    expect(legacy).toMatchObject({ ownerId: null, imageUrl: 'https://old.test/legacy.png' });
    const generated = await slot(2, 0);
    const [kept] = await t.db.sql<{ version: number }[]>`SELECT version FROM image_versions WHERE content_creation_request_id = ${project} AND scene_index = 2 AND image_index = 0`;
    const ids: Ids = { image: generated.id, version: kept!.version, legacy: legacy.id };

    expect((await t.call('GET', '/projects?limit=100')).body.items.map((p: any) => p.id)).toContain(project);
    expect((await t.call('GET', '/images?limit=100')).body.items.map((i: any) => i.id)).toEqual(expect.arrayContaining([legacy.id, generated.id]));

    for (const [route, call, expected] of CASES) {
      const { method, path, body } = call(ids);
      const res = await t.call(method, path, body);
      expect(res.status, `${route}: ${JSON.stringify(res.body).slice(0, 200)}`).toBe(expected);
      if (route === 'DELETE /images/:id') await t.waitForProject(project);
      if (route === 'POST /projects/:id/generate') {
        await t.waitForProject(project);
        const [row] = await t.db.sql<{ userId: string | null }[]>`SELECT user_id FROM content_creation_requests WHERE id = ${project}`;
        expect(row!.userId).toBeNull();
      }
    }
    expect((await t.call('GET', `/projects/${project}`)).status).toBe(404);
  });
});
