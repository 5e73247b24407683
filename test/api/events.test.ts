import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listImageRowVersions, listWatchedImages } from '../../src/db/events.ts';
import { createProjectEventsHub, type ProjectEventsHub } from '../../src/events/project-events.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { onError } from '../../src/http/errors.ts';
import { authenticate } from '../../src/http/auth.ts';
import { requestContext } from '../../src/http/middleware.ts';
import { eventRoutes } from '../../src/http/routes/events.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestDatabase } from '../support/database.ts';
import { gatedLocalProvider, until } from '../support/gated-provider.ts';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { sseReader } from '../support/sse.ts';

const succeededIds = (events: { event: string; data: any }[]) =>
  events.filter((e) => e.event === 'image' && e.data.status === 'succeeded').map((e) => e.data.id as string);

describe('GET /projects/:id/events, in-process', () => {
  const gated = gatedLocalProvider();
  let t: TestApp;
  let hub: ProjectEventsHub;
  // The route on an app of its own (with the real middleware and error handler), so this file
  // does not depend on whether src/app.ts mounts it, and the keep-alive can be short.
  const events = new OpenAPIHono<AppEnv>();
  const open = async (id: string) => {
    const res = await events.request(`/projects/${id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    return sseReader(res.body!);
  };
  const create = async (scenes: number, imagesPerScene: number) => {
    const res = await t.call('POST', '/projects', { scenes: Array.from({ length: scenes }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };

  beforeAll(async () => {
    t = await startTestApp({ GENERATION_CONCURRENCY: '4' }, { providers: gated.providers });
    hub = createProjectEventsHub({ sql: t.deps.db.sql, store: t.deps.store, log: t.deps.log });
    events.use(requestContext(t.deps.log));
    events.use(authenticate({ mode: 'none', singleOwner: t.deps.singleOwner }));
    events.route('/', eventRoutes({ events: { sql: t.deps.db.sql, hub }, keepAliveMs: 30 }));
    events.onError(onError);
  });
  afterAll(async () => {
    gated.open();
    await hub.close();
    await t.close();
  });

  it('sends progress, every image as it changes, then done, and ends', async () => {
    gated.close();
    const id = await create(2, 2);
    await until(() => gated.waiting() === 4, 'all four slots at the provider');
    const stream = await open(id);

    expect(await stream.next()).toEqual({ event: 'progress', data: { total: 4, queued: 0, running: 4, succeeded: 0, failed: 0 } });
    const running = [await stream.next(), await stream.next(), await stream.next(), await stream.next()];
    expect(running.map((e) => [e!.event, e!.data.status])).toEqual(Array(4).fill(['image', 'running']));

    gated.open();
    const rest = await stream.rest(); // resolves only when the server closes the stream
    expect(succeededIds(rest).sort()).toEqual(running.map((e) => e!.data.id).sort());
    expect(rest.at(-2)).toEqual({ event: 'progress', data: { total: 4, queued: 0, running: 0, succeeded: 4, failed: 0 } });
    expect(rest.at(-1)).toEqual({ event: 'done', data: { status: 'completed' } });
    expect(rest.filter((e) => e.event === 'done')).toHaveLength(1);

    // Each image event is the image of GET /projects/:id, plus its sceneIndex.
    const project = (await t.call('GET', `/projects/${id}`)).body;
    const shown = project.generatedOutput.scenes.flatMap((s: any, i: number) => s.images.map((image: any) => ({ ...image, sceneIndex: i + 1 })));
    const last = new Map(rest.filter((e) => e.event === 'image').map((e) => [e.data.id, e.data]));
    expect([...last.values()].sort((a, b) => a.sceneIndex - b.sceneIndex || a.imageIndex - b.imageIndex)).toEqual(shown);
    for (const image of shown) expect(image.url).toMatch(/^http:\/\/sceneworks\.test\/files\//);
    await until(() => hub.watching() === 0, 'the watch released');
  });

  it('a client that connects after completion gets progress and done at once', async () => {
    const id = await create(1, 3);
    await t.waitForProject(id);
    const stream = await open(id);
    expect(await stream.rest()).toEqual([
      { event: 'progress', data: { total: 3, queued: 0, running: 0, succeeded: 3, failed: 0 } },
      { event: 'done', data: { status: 'completed' } },
    ]);
  });

  it('keeps an idle stream alive, and releases everything when the client goes', async () => {
    gated.close();
    const id = await create(1, 1);
    await until(() => gated.waiting() === 1, 'the slot at the provider');
    const stream = await open(id);
    expect(await stream.next()).toMatchObject({ event: 'progress' });
    expect(await stream.next()).toMatchObject({ event: 'image', data: { status: 'running' } });
    expect(await stream.block()).toEqual({ comment: ': keep-alive' });
    expect(hub.watching()).toBe(1);
    await stream.cancel();
    await until(() => hub.watching() === 0, 'the watch released after the client left');
    gated.open();
    await t.waitForProject(id);
  });

  it('answers 404 with the error body for an unknown, foreign or malformed id', async () => {
    const foreign = randomUUID();
    await t.db.sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${foreign}, ${randomUUID()})`;
    for (const id of [randomUUID(), foreign, 'not-a-uuid']) {
      const res = await events.request(`/projects/${id}/events`);
      expect(res.status).toBe(404);
      const body = (await res.json()) as any;
      expect(body.error).toMatchObject({ code: 'NOT_FOUND', requestId: expect.any(String) });
    }
    expect(hub.watching()).toBe(0);
  });

  it('the triggers notify once per project per statement, and not for a lease heartbeat', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const sql = t.db.sql;
    await sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${a}, ${t.deps.singleOwner.ownerId}), (${b}, ${t.deps.singleOwner.ownerId})`;
    const listener = postgres(t.db.url, { max: 1, onnotice: () => {} });
    const heard: string[] = [];
    await listener.listen('sceneworks_images', (payload) => heard.push(payload));
    try {
      await sql`
        INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
        SELECT p, 1, i, 'succeeded', 'https://old.test/' || i FROM unnest(${[a, b]}::uuid[]) AS p, generate_series(0, 499) AS i`;
      await sql`UPDATE generated_images SET locked_until = now() WHERE content_creation_request_id IN (${a}, ${b})`;
      await sql`UPDATE generated_images SET status = 'failed', updated_at = now() WHERE content_creation_request_id IN (${a}, ${b})`;
      await sql`DELETE FROM generated_images WHERE content_creation_request_id IN (${a}, ${b})`;
      await sql`SELECT pg_notify('sceneworks_images', 'end')`;
      await until(() => heard.includes('end'), 'the notifications');
    } finally {
      await listener.end();
    }
    // insert, status update, delete: one each per project; the heartbeat none.
    expect(heard.filter((p) => p === a)).toHaveLength(3);
    expect(heard.filter((p) => p === b)).toHaveLength(3);
  });

  it('a burst of changes to a project costs one more read, not one per change', async () => {
    const [p, q] = [randomUUID(), randomUUID()];
    const sql = t.db.sql;
    await sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${p}, ${t.deps.singleOwner.ownerId}), (${q}, ${t.deps.singleOwner.ownerId})`;
    await sql`INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
              VALUES (${p}, 1, 0, 'succeeded', 'https://old.test/p'), (${q}, 1, 0, 'succeeded', 'https://old.test/q')`;
    // Each read as `what:project`: all (the first), versions (each change), ids (rows written since).
    const reads: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const counting = createProjectEventsHub({
      sql,
      store: t.deps.store,
      log: t.deps.log,
      async readVersions(s, id) {
        reads.push(`versions:${id}`);
        return listImageRowVersions(s, id);
      },
      async readImages(s, id, ids) {
        reads.push(`${ids ? 'ids' : 'all'}:${id}`);
        const rows = await listWatchedImages(s, id, ids);
        if (id === p) await held; // P's reads, made before the burst, are answered after it
        return rows;
      },
    });
    const seenByP: string[] = [];
    const ignore = { onSnapshot: () => {}, onChange: () => {}, onEnd: () => {} };
    try {
      await counting.watch(q, ignore);
      await until(() => reads.includes(`all:${q}`), "Q's first read");
      await counting.watch(p, { ...ignore, onSnapshot: () => seenByP.push('snapshot'), onChange: () => seenByP.push('change') });
      await until(() => reads.includes(`all:${p}`), "P's first read in flight");
      for (let i = 0; i < 100; i++) await sql`UPDATE generated_images SET updated_at = now() WHERE content_creation_request_id = ${p}`;
      // Notifications arrive in commit order: once Q's is answered, all 100 of P's have arrived.
      await sql`UPDATE generated_images SET updated_at = now() WHERE content_creation_request_id = ${q}`;
      await until(() => reads.includes(`ids:${q}`), "Q's second read");
      release();
      await until(() => seenByP.length === 2, "P's snapshot and change");
      expect(seenByP).toEqual(['snapshot', 'change']);
      expect(reads.filter((r) => r.endsWith(p))).toEqual([`all:${p}`, `versions:${p}`, `ids:${p}`]);
    } finally {
      await counting.close();
    }
  });

  it('a project whose reads are slow is read less often: reads take at most their share of the time', async () => {
    const p = randomUUID();
    const sql = t.db.sql;
    await sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${p}, ${t.deps.singleOwner.ownerId})`;
    await sql`INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status) VALUES (${p}, 1, 0, 'running')`;
    const READ_MS = 60;
    const reads: number[] = [];
    const spaced = createProjectEventsHub({
      sql,
      store: t.deps.store,
      log: t.deps.log,
      coalesceMs: 5,
      // A read of a large project: it takes READ_MS; at a share of 0.2 the next waits 4 x READ_MS after it.
      readShare: 0.2,
      async readVersions(s, id) {
        reads.push(performance.now());
        await new Promise((resolve) => setTimeout(resolve, READ_MS));
        return listImageRowVersions(s, id);
      },
    });
    let changes = 0;
    try {
      await spaced.watch(p, { onSnapshot: () => {}, onChange: () => (changes += 1), onEnd: () => {} });
      // A change every 10 ms for 1.2 s: answered at once, that would be a read every READ_MS + 5 ms (~18 reads).
      const until = performance.now() + 1_200;
      for (let i = 0; performance.now() < until; i++) {
        await sql`UPDATE generated_images SET status = ${i % 2 ? 'running' : 'queued'}, updated_at = now() WHERE content_creation_request_id = ${p}`;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // 1.2 s / (60 ms read + 240 ms spacing) = 4 reads, 5 with the one in flight at the start.
      expect(reads.length).toBeGreaterThanOrEqual(2);
      expect(reads.length).toBeLessThanOrEqual(6);
      for (let i = 1; i < reads.length; i++) expect(reads[i]! - reads[i - 1]!).toBeGreaterThanOrEqual(READ_MS * 5 - 15);
      expect(changes).toBeGreaterThan(0); // and the changes still come
    } finally {
      await spaced.close();
    }
  });

  it('a read that fails is tried again, and nothing of it is half applied', async () => {
    const p = randomUUID();
    const sql = t.db.sql;
    await sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${p}, ${t.deps.singleOwner.ownerId})`;
    await sql`INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status) VALUES (${p}, 1, 0, 'running'), (${p}, 1, 1, 'running')`;
    const failures = { all: 1, versions: 0, ids: 0 };
    const failing = createProjectEventsHub({
      sql,
      store: t.deps.store,
      log: t.deps.log,
      coalesceMs: 10,
      async readVersions(s, id) {
        if (failures.versions-- > 0) throw new Error('versions: connection lost');
        return listImageRowVersions(s, id);
      },
      async readImages(s, id, ids) {
        const rows = await listWatchedImages(s, id, ids);
        if (failures[ids ? 'ids' : 'all']-- > 0) throw new Error('images: connection lost');
        return rows;
      },
    });
    const frames: string[] = [];
    try {
      await failing.watch(p, {
        onSnapshot: (snapshot) => frames.push(snapshot.progress.progress + snapshot.images),
        onChange: (change) => frames.push(change.images.map(([, frame]) => frame).join('') + change.progress.progress),
        onEnd: () => {},
      });
      await until(() => frames.length === 1, 'the snapshot, after the first read failed');
      expect(frames[0]).toContain('"running":2');

      // The narrow read fails, then the read of the changed row: the change still comes, whole.
      Object.assign(failures, { versions: 1, ids: 1 });
      await sql`UPDATE generated_images SET status = 'failed', error = 'x', updated_at = now() WHERE content_creation_request_id = ${p} AND image_index = 0`;
      await until(() => frames.length === 2, 'the change, after two failed reads');
      expect(frames[1]).toMatch(/^event: image\ndata: \{[^\n]*"imageIndex":0,"status":"failed"[^\n]*\n\nevent: progress\n/);
      expect(frames[1]).toContain('"running":1,"succeeded":0,"failed":1');
      expect(Object.values(failures).every((left) => left < 0)).toBe(true); // every planned failure happened
    } finally {
      await failing.close();
    }
  });
});

describe('GET /projects/:id/events, across replicas', () => {
  it('a client of a replica that runs nothing sees the images another replica makes', async () => {
    const db = await createTestDatabase();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-events-'));
    await chmod(dataDir, 0o755);
    const services: ServiceProcess[] = [];
    try {
      const env = { DATABASE_URL: db.url, DATA_DIR: dataDir };
      const api = await spawnService({ ...env, RUNNER: 'off' });
      services.push(api);
      const created = await api.fetchJson('/projects', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scenes: Array.from({ length: 3 }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene: 2 }),
      });
      expect(created.status).toBe(202);
      const res = await fetch(`${api.baseUrl}/projects/${created.body.id}/events`);
      expect(res.status).toBe(200);
      const stream = sseReader(res.body!);
      expect(await stream.next()).toEqual({ event: 'progress', data: { total: 6, queued: 6, running: 0, succeeded: 0, failed: 0 } });

      // Only now does any work start, on the other replica.
      services.push(await spawnService({ ...env, LOCAL_PROVIDER_DELAY_MS: '100', GENERATION_CONCURRENCY: '4' }));
      const rest = await stream.rest();
      expect(new Set(succeededIds(rest)).size).toBe(6);
      expect(succeededIds(rest)).toHaveLength(6);
      expect(rest.at(-2)).toEqual({ event: 'progress', data: { total: 6, queued: 0, running: 0, succeeded: 6, failed: 0 } });
      expect(rest.at(-1)).toEqual({ event: 'done', data: { status: 'completed' } });
    } finally {
      for (const service of services) service.child.kill('SIGTERM');
      const codes = await Promise.all(services.map((s) => s.exited));
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
      expect(codes.every((code) => code === 0)).toBe(true);
    }
  });
});
