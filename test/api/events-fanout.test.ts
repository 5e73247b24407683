import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { OpenAPIHono } from '@hono/zod-openapi';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { listImageRowVersions, listWatchedImages } from '../../src/db/events.ts';
import { createProjectEventsHub, type ProjectEventsHub } from '../../src/events/project-events.ts';
import { authenticate } from '../../src/http/auth.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { onError } from '../../src/http/errors.ts';
import { requestContext } from '../../src/http/middleware.ts';
import { eventRoutes } from '../../src/http/routes/events.ts';
import type { ObjectStore } from '../../src/storage/store.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { gatedLocalProvider, until } from '../support/gated-provider.ts';
import { sseReader } from '../support/sse.ts';

/**
 * Many clients of one project: the work of a change is done once per project, whatever the
 * number of clients. A private store, so URLs are signed, and signing is counted too.
 */
type Event = { event: string; data: any };

const gated = gatedLocalProvider();
let t: TestApp;
let hub: ProjectEventsHub;
/** Each read of the hub, as `what:project` (what: all, versions, ids), and the ids read by id. */
const reads: string[] = [];
const idsRead: string[] = [];
/** Keys per signUrls call. */
const signs: number[] = [];
const events = new OpenAPIHono<AppEnv>();

const countingSigns = (store: ObjectStore): ObjectStore =>
  Object.assign(Object.create(store) as ObjectStore, {
    async signUrls(keys: readonly string[]) {
      signs.push(keys.length);
      return store.signUrls!(keys);
    },
  });

beforeAll(async () => {
  t = await startTestApp({ GENERATION_CONCURRENCY: '4', STORAGE_PUBLIC: 'false' }, { providers: gated.providers, wrapStore: countingSigns });
  hub = createProjectEventsHub({
    sql: t.deps.db.sql,
    store: t.deps.store,
    log: t.deps.log,
    async readVersions(sql, id) {
      reads.push(`versions:${id}`);
      return listImageRowVersions(sql, id);
    },
    async readImages(sql, id, ids) {
      reads.push(`${ids ? 'ids' : 'all'}:${id}`);
      idsRead.push(...(ids ?? []));
      return listWatchedImages(sql, id, ids);
    },
  });
  events.use(requestContext(t.deps.log));
  events.use(authenticate({ mode: 'none', singleOwner: t.deps.singleOwner }));
  events.route('/', eventRoutes({ events: { sql: t.deps.db.sql, hub }, keepAliveMs: 60_000 }));
  events.onError(onError);
});
afterAll(async () => {
  gated.open();
  await hub.close();
  await t.close();
});
beforeEach(() => {
  gated.open();
  reads.length = 0;
  idsRead.length = 0;
  signs.length = 0;
});

const open = async (id: string) => {
  const res = await events.request(`/projects/${id}/events`);
  expect(res.status).toBe(200);
  return sseReader(res.body!);
};
const create = async (scenes: number, imagesPerScene: number) => {
  const res = await t.call('POST', '/projects', { scenes: Array.from({ length: scenes }, (_, i) => ({ prompt: `scene ${i}` })), imagesPerScene });
  expect(res.status).toBe(202);
  return res.body.id as string;
};
/** A signed URL's object, without its signature (each signing may date it differently). */
const unsigned = (image: any) => ({ ...image, url: image.url === null ? null : new URL(image.url).pathname });
/** The images of GET /projects/:id, each with its sceneIndex, as events carry them. */
const shownImages = async (id: string) => {
  const project = (await t.call('GET', `/projects/${id}`)).body;
  return project.generatedOutput.scenes
    .flatMap((s: any) => s.images.map((image: any) => unsigned({ ...image, sceneIndex: s.index })))
    .sort((a: any, b: any) => a.sceneIndex - b.sceneIndex || a.imageIndex - b.imageIndex);
};
/** The last state a client was sent of each slot (sceneIndex, imageIndex), in slot order. */
const lastBySlot = (received: Event[]) =>
  [...new Map(received.filter((e) => e.event === 'image').map((e) => [`${e.data.sceneIndex}/${e.data.imageIndex}`, unsigned(e.data)])).values()].sort(
    (a, b) => a.sceneIndex - b.sceneIndex || a.imageIndex - b.imageIndex,
  );
const count = (what: string, id: string) => reads.filter((r) => r === `${what}:${id}`).length;

describe('GET /projects/:id/events, many clients of one project', () => {
  it('50 clients all get every image to its final state and done; the hub reads and signs per change, not per client', async () => {
    gated.close();
    const id = await create(2, 3);
    await until(() => gated.waiting() === 4, 'four slots at the provider');
    const clients = await Promise.all(Array.from({ length: 50 }, () => open(id)));
    const received: Event[][] = clients.map(() => []);
    for (const [i, client] of clients.entries()) {
      for (let n = 0; n < 7; n++) received[i]!.push((await client.next())!);
      expect(received[i]![0]).toMatchObject({ event: 'progress', data: { total: 6, succeeded: 0, failed: 0 } });
      expect(received[i]!.slice(1).map((e) => e.event)).toEqual(Array(6).fill('image'));
    }
    // Whatever the number of clients, the project's rows were read whole once.
    expect(count('all', id)).toBe(1);
    const [joinReads, joinSigns] = [count('versions', id), signs.length];
    expect(joinSigns).toBeLessThanOrEqual(joinReads + 1); // one signing per snapshot, shared by those joining at that read

    gated.open();
    const rests = await Promise.all(clients.map((c) => c.rest()));
    const changeSigns = signs.length - joinSigns; // before GET /projects/:id signs its own
    const shown = await shownImages(id);
    expect(shown.every((image: any) => image.status === 'succeeded')).toBe(true);
    for (const [i, rest] of rests.entries()) {
      const all = [...received[i]!, ...rest];
      expect(lastBySlot(all)).toEqual(shown);
      expect(all.at(-2)).toEqual({ event: 'progress', data: { total: 6, queued: 0, running: 0, succeeded: 6, failed: 0 } });
      expect(all.at(-1)).toEqual({ event: 'done', data: { status: 'completed' } });
      expect(all.filter((e) => e.event === 'done')).toHaveLength(1);
    }
    // The generation wrote each slot at most twice more (claimed, succeeded), a statement or
    // so each: per change one narrow read, rows read only where written, one signing.
    const changeReads = count('versions', id) - joinReads;
    expect(count('all', id)).toBe(1);
    expect(changeReads).toBeLessThanOrEqual(2 * 6 + 2);
    expect(idsRead.length).toBeLessThanOrEqual(2 * 6);
    expect(changeSigns).toBeLessThanOrEqual(changeReads);
    await until(() => hub.watching() === 0, 'every watch released');
  });

  it('a client that reads nothing for a while skips intermediate states, never the latest state of an image', async () => {
    const id = randomUUID();
    await t.db.sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${id}, ${t.deps.singleOwner.ownerId})`;
    await t.db.sql`INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, attempts)
                   SELECT ${id}, 1 + i / 4, i % 4, 'running', 1 FROM generate_series(0, 7) AS i`;
    const slow = await open(id);
    const follower = await open(id);
    const first = [(await slow.next())!];
    expect(first[0]).toEqual({ event: 'progress', data: { total: 8, queued: 0, running: 8, succeeded: 0, failed: 0 } });
    const followed: Event[] = [];
    const follow = async (n: number) => {
      for (let i = 0; i < n; i++) followed.push((await follower.next())!);
    };
    await follow(9);

    // 24 changes, each of one image and seen by the follower before the next (24 reads of the
    // hub); then one change ends scene 2's images, and the last one scene 1's.
    for (let step = 1; step <= 24; step++) {
      await t.db.sql`UPDATE generated_images SET error = ${`step ${step}`}, updated_at = now()
                     WHERE content_creation_request_id = ${id} AND scene_index = ${1 + ((step % 8) >> 2)} AND image_index = ${step % 4}`;
      await follow(1);
      expect(followed.at(-1)).toMatchObject({ event: 'image', data: { error: `step ${step}` } });
    }
    const end = (scene: number) => t.db.sql`
      UPDATE generated_images SET status = 'failed', error = 'final', updated_at = now() WHERE content_creation_request_id = ${id} AND scene_index = ${scene}`;
    await end(2);
    await follow(5);
    expect(followed.at(-1)).toEqual({ event: 'progress', data: { total: 8, queued: 0, running: 4, succeeded: 0, failed: 4 } });
    await end(1);
    followed.push(...(await follower.rest()));
    expect(followed.at(-1)).toEqual({ event: 'done', data: { status: 'failed' } });

    const all = [...first, ...(await slow.rest())];
    const images = (await listWatchedImages(t.db.sql, id)).map((r) => unsigned(r.image));
    expect(images.every((image) => image.error === 'final')).toBe(true);
    expect(lastBySlot(all)).toEqual(images.map(({ storageKey, ...image }) => image));
    expect(all.at(-2)).toEqual({ event: 'progress', data: { total: 8, queued: 0, running: 0, succeeded: 0, failed: 8 } });
    expect(all.at(-1)).toEqual({ event: 'done', data: { status: 'failed' } });
    // It was slow: what piled up while it read nothing (beyond what the pipe buffers) was
    // merged, one state per image; a client sent every change would have as many as the follower.
    expect(all.length).toBeLessThan(followed.length - 10);
  });

  it('a deleted image: its slot is shown under its new id, and the old id no longer counts', async () => {
    const id = await create(2, 1);
    const done = await t.waitForProject(id);
    const deleted = done.generatedOutput.scenes[0].images[0];
    gated.close();
    expect((await t.call('POST', `/projects/${id}/scenes/${done.generatedOutput.scenes[1].index}/regenerate`, {})).status).toBe(202);
    await until(() => gated.waiting() === 1, 'the regenerated slot at the provider');
    const client = await open(id);
    const received: Event[] = [];
    for (let n = 0; n < 3; n++) received.push((await client.next())!);
    expect(received[0]).toEqual({ event: 'progress', data: { total: 2, queued: 0, running: 1, succeeded: 1, failed: 0 } });

    expect((await t.call('DELETE', `/images/${deleted.id}`)).status).toBe(204);
    // The slot's row changes its id; the notification names the project all the same
    // (migration 1765324800000), so the stream shows the deletion at once, not at the
    // project's next change.
    const atOnce = await Promise.race([client.next(), sleep(10_000).then(() => 'no event within 10 s of the DELETE')]);
    expect(atOnce).toMatchObject({ event: 'image', data: { sceneIndex: 1, imageIndex: 0, status: 'failed', error: 'deleted' } });
    received.push(atOnce as Event);
    gated.open();
    const rest = await client.rest();
    const all = [...received, ...rest];
    const emptied = all.filter((e) => e.event === 'image' && e.data.sceneIndex === 1 && e.data.status === 'failed');
    expect(emptied).toHaveLength(1);
    expect(emptied[0]!.data).toMatchObject({ imageIndex: 0, status: 'failed', error: 'deleted', url: null });
    expect(emptied[0]!.data.id).not.toBe(deleted.id);
    expect(rest.filter((e) => e.event === 'image' && e.data.id === deleted.id)).toEqual([]);
    expect(lastBySlot(all)).toEqual(await shownImages(id));
    // Two rows, not three: the old id was forgotten.
    expect(rest.filter((e) => e.event === 'progress').every((e) => e.data.total === 2)).toBe(true);
    expect(all.at(-2)).toEqual({ event: 'progress', data: { total: 2, queued: 0, running: 0, succeeded: 1, failed: 1 } });
    expect(all.at(-1)).toEqual({ event: 'done', data: { status: 'partial' } });
  });

  it('a scene that shrinks: its removed slots leave the progress and get no more images', async () => {
    gated.close();
    const id = await create(1, 3);
    await until(() => gated.waiting() === 3, 'three slots at the provider');
    const client = await open(id);
    const received: Event[] = [];
    for (let n = 0; n < 4; n++) received.push((await client.next())!);
    expect(received[0]).toEqual({ event: 'progress', data: { total: 3, queued: 0, running: 3, succeeded: 0, failed: 0 } });
    const removed = received.slice(1).filter((e) => e.data.imageIndex > 0).map((e) => e.data.id);
    expect(removed).toHaveLength(2);

    expect((await t.call('POST', `/projects/${id}/scenes/1/regenerate`, { imagesPerScene: 1 })).status).toBe(202);
    gated.open();
    const rest = await client.rest();
    const all = [...received, ...rest];
    expect(rest.filter((e) => e.event === 'image' && removed.includes(e.data.id))).toEqual([]);
    expect(rest.filter((e) => e.event === 'progress').every((e) => e.data.total === 1)).toBe(true);
    expect(lastBySlot(all).filter((image) => image.imageIndex === 0)).toEqual(await shownImages(id));
    expect(all.at(-2)).toEqual({ event: 'progress', data: { total: 1, queued: 0, running: 0, succeeded: 1, failed: 0 } });
    expect(all.at(-1)).toEqual({ event: 'done', data: { status: 'completed' } });
  });
});
