import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicPath } from '../../src/http/auth.ts';
import { startFakeJwks, supabaseUserClaims, type FakeJwks } from '../fakes/jwks.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * Every route, as user A, aimed at user B's resources: a 404 (never a 403, never B's data),
 * and nothing of B's changes. The routes come from the app itself: a route added without a
 * case here fails this test, so isolation is decided for each new route, not remembered.
 */
let jwks: FakeJwks;
let t: TestApp;
let a: Record<string, string>;
let b: Record<string, string>;
const userA = randomUUID();
const userB = randomUUID();
let theirs: string;

type Call = { method: string; path: string; body?: unknown };
/** B's things the routes are aimed at: a project, one of its scenes, one of its images and a kept version of it. */
type Ids = { project: string; sceneIndex: number; image: string; version: number };
type Case =
  /** A route that names one of B's resources: A gets a 404. */
  | { kind: 'others'; call: (ids: Ids) => Call }
  /** A route over the caller's own things: what A gets or makes is A's alone. */
  | { kind: 'own'; call: () => Call; check: (res: { status: number; body: any }) => void | Promise<void> };

const CASES: Record<string, Case> = {
  'POST /projects': {
    kind: 'own',
    call: () => ({ method: 'POST', path: '/projects', body: { scenes: [{ prompt: 'a new one of A' }] } }),
    check: async (res) => {
      expect(res.status).toBe(202);
      const [row] = await t.db.sql<{ userId: string }[]>`SELECT user_id FROM content_creation_requests WHERE id = ${res.body.id}`;
      expect(row!.userId).toBe(userA);
    },
  },
  'GET /projects': {
    kind: 'own',
    call: () => ({ method: 'GET', path: '/projects?limit=100' }),
    check: (res) => {
      expect(res.status).toBe(200);
      expect(res.body.items.map((p: any) => p.id)).not.toContain(theirs);
    },
  },
  'GET /projects/:id': { kind: 'others', call: ({ project }) => ({ method: 'GET', path: `/projects/${project}` }) },
  'GET /project/:id': { kind: 'others', call: ({ project }) => ({ method: 'GET', path: `/project/${project}` }) },
  'GET /projects/:id/archive': { kind: 'others', call: ({ project }) => ({ method: 'GET', path: `/projects/${project}/archive` }) },
  'GET /images/:id/download': { kind: 'others', call: ({ image }) => ({ method: 'GET', path: `/images/${image}/download` }) },
  'POST /projects/:id/generate': { kind: 'others', call: ({ project }) => ({ method: 'POST', path: `/projects/${project}/generate` }) },
  'POST /projects/:id/scenes/:sceneIndex/regenerate': {
    kind: 'others',
    call: ({ project, sceneIndex }) => ({ method: 'POST', path: `/projects/${project}/scenes/${sceneIndex}/regenerate`, body: { prompt: 'taken over' } }),
  },
  'GET /projects/:id/events': { kind: 'others', call: ({ project }) => ({ method: 'GET', path: `/projects/${project}/events` }) },
  'PATCH /projects/:id/scenes/:sceneIndex': {
    kind: 'others',
    call: ({ project, sceneIndex }) => ({ method: 'PATCH', path: `/projects/${project}/scenes/${sceneIndex}`, body: { prompt: 'edited by A' } }),
  },
  'GET /projects/:id/webhook-deliveries': { kind: 'others', call: ({ project }) => ({ method: 'GET', path: `/projects/${project}/webhook-deliveries` }) },
  'GET /projects/:id/cost': { kind: 'others', call: ({ project }) => ({ method: 'GET', path: `/projects/${project}/cost` }) },
  'DELETE /projects/:id': { kind: 'others', call: ({ project }) => ({ method: 'DELETE', path: `/projects/${project}` }) },
  'GET /images/:id/versions': { kind: 'others', call: ({ image }) => ({ method: 'GET', path: `/images/${image}/versions` }) },
  'POST /images/:id/versions/:version/restore': {
    kind: 'others',
    call: ({ image, version }) => ({ method: 'POST', path: `/images/${image}/versions/${version}/restore` }),
  },
  'DELETE /images/:id': { kind: 'others', call: ({ image }) => ({ method: 'DELETE', path: `/images/${image}` }) },
  'GET /images': {
    kind: 'own',
    call: () => ({ method: 'GET', path: '/images?limit=100' }),
    check: async (res) => {
      expect(res.status).toBe(200);
      const theirImages = await t.db.sql<{ id: string }[]>`SELECT id FROM generated_images WHERE content_creation_request_id = ${theirs}`;
      expect(theirImages.length).toBeGreaterThan(0);
      // A search and a project filter take other queries: words of B's prompts, B's project id.
      const searched = await t.call('GET', '/images?limit=100&q=one', undefined, a);
      const filtered = await t.call('GET', `/images?limit=100&projectId=${theirs}`, undefined, a);
      expect([searched.status, filtered.status]).toEqual([200, 200]);
      const ownSearch = await t.call('GET', '/images?limit=100&q=one', undefined, b);
      expect(ownSearch.body.items.length, 'B finds its images with these words').toBeGreaterThan(0);
      expect(filtered.body.items).toEqual([]);
      for (const page of [res, searched]) for (const { id } of theirImages) expect(page.body.items.map((i: any) => i.id)).not.toContain(id);
    },
  },
  // Operators' numbers (no per-user label in them): a user is refused outright.
  'GET /metrics': {
    kind: 'own',
    call: () => ({ method: 'GET', path: '/metrics' }),
    check: (res) => {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    },
  },
  'GET /images/:id': { kind: 'others', call: ({ image }) => ({ method: 'GET', path: `/images/${image}` }) },
  'PATCH /images/:id': { kind: 'others', call: ({ image }) => ({ method: 'PATCH', path: `/images/${image}`, body: { favorite: true } }) },
};
/** Routes anyone may call (no token): what they serve is public or protected by its URL (signed, unguessable). */
/** The web pages' shells and assets are public too: they hold no data (the next test checks a shell). */
const PUBLIC = new Set(['GET /healthz', 'GET /readyz', 'GET /openapi.json', 'GET /docs', 'GET /files/*', 'GET /', 'GET /gallery', 'GET /p/:id', 'GET /assets/:name']);

beforeAll(async () => {
  jwks = await startFakeJwks();
  t = await startTestApp({ AUTH: 'jwt', JWT_JWKS_URL: jwks.url, STORAGE_PUBLIC: 'true' });
  a = { authorization: `Bearer ${await jwks.sign(supabaseUserClaims({ sub: userA }))}` };
  b = { authorization: `Bearer ${await jwks.sign(supabaseUserClaims({ sub: userB }))}` };
  const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'B one', voice: 'b' }, { prompt: 'B two' }], imagesPerScene: 2 }, b);
  theirs = created.body.id;
  expect(created.status).toBe(202);
  // A regenerate, so B's images have kept versions too.
  await snapshotOfB();
  expect((await t.call('POST', `/projects/${theirs}/scenes/1/regenerate`, { prompt: 'B one again' }, b)).status).toBe(202);
});
afterAll(async () => {
  await t.close();
  await jwks.close();
});

async function snapshotOfB() {
  for (let i = 0; i < 400; i++) {
    const res = await t.call('GET', `/projects/${theirs}`, undefined, b);
    if (!['queued', 'running'].includes(res.body.status)) {
      const rows = await t.db.sql`SELECT id, status, generation, storage_key, prompt, image_url, version, favorite FROM generated_images WHERE content_creation_request_id = ${theirs} ORDER BY id`;
      const versions = await t.db.sql`SELECT id, version, storage_key FROM image_versions WHERE content_creation_request_id = ${theirs} ORDER BY id`;
      const [project] = await t.db.sql`SELECT user_id, title, generated_output, settings, metadata, updated_at FROM content_creation_requests WHERE id = ${theirs}`;
      return { answer: res.body, rows, versions, project };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("B's project never finished");
}

describe('owner isolation on every route', () => {
  it('has a case for every route the app serves, and no route is public by accident', () => {
    const routes = [...new Set(t.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/^\/docs\/scalar-[^/]+\.js$/, '/docs/*.js')}`))];
    const missing = routes.filter((route) => !CASES[route] && !PUBLIC.has(route) && route !== 'GET /docs/*.js');
    expect(missing, 'routes without an isolation case').toEqual([]);
    for (const route of routes) {
      const path = route.split(' ')[1]!.replace(':id', randomUUID()).replace(':sceneIndex', '1').replace('*', 'x');
      expect(isPublicPath(path), route).toBe(PUBLIC.has(route) || route === 'GET /docs/*.js');
    }
  });

  it("the storyboard page's shell for B's project, asked for by A or by nobody, holds nothing of B's", async () => {
    for (const headers of [a, {}]) {
      const res = await t.app.request(`/p/${theirs}`, { headers });
      expect(res.status).toBe(200);
      const page = await res.text();
      expect(page).toContain('data-page="storyboard"');
      expect(page).not.toContain('B one');
      expect(page).not.toContain(userB);
    }
  });

  it("A aimed at B's resources: 404 everywhere, and B's project, rows and images are exactly as they were", async () => {
    const before = await snapshotOfB();
    const [slot] = await t.db.sql<{ id: string }[]>`SELECT id FROM generated_images WHERE content_creation_request_id = ${theirs} AND scene_index = 1 AND image_index = 0`;
    const [kept] = await t.db.sql<{ version: number }[]>`SELECT version FROM image_versions WHERE content_creation_request_id = ${theirs} AND scene_index = 1 AND image_index = 0`;
    expect(kept).toBeDefined();
    const ids: Ids = { project: theirs, sceneIndex: 1, image: slot!.id, version: kept!.version };
    for (const [route, c] of Object.entries(CASES)) {
      const call = c.kind === 'others' ? c.call(ids) : c.call();
      // B reads its project first, so this process's cache of project answers holds it: a
      // scope check skipped before a cache lookup would hand A that answer.
      if (c.kind === 'others') expect((await t.call('GET', `/projects/${theirs}`, undefined, b)).status).toBe(200);
      const res = await t.call(call.method, call.path, call.body, a);
      if (c.kind === 'others') {
        expect(res.status, route).toBe(404);
        expect(res.body.error.code, route).toBe('NOT_FOUND');
        expect(JSON.stringify(res.body), route).not.toContain('B one');
      } else {
        await c.check(res);
      }
    }
    // An unknown project is the same 404: nothing tells an existing foreign id from a missing one.
    const unknown = await t.call('GET', `/projects/${randomUUID()}`, undefined, a);
    const foreign = await t.call('GET', `/projects/${theirs}`, undefined, a);
    expect({ status: foreign.status, code: foreign.body.error.code }).toEqual({ status: unknown.status, code: unknown.body.error.code });
    expect(foreign.body.error.message).toBe(unknown.body.error.message);

    const after = await snapshotOfB();
    expect(after.rows).toEqual(before.rows);
    expect(after.versions).toEqual(before.versions);
    expect(after.project).toEqual(before.project);
    expect(after.answer).toEqual(before.answer);
    for (const url of after.answer.generatedOutput.scenes.flatMap((s: any) => s.imageUrls)) {
      expect((await t.app.request(new URL(url).pathname)).status).toBe(200);
    }
  });
});
