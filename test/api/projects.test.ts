import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

/** A project written the legacy way: image URLs only inside generated_output, no rows. */
async function insertLegacyProject(generatedOutput: unknown, owner: string | null = LOCAL_OWNER_ID, settings: unknown = {}) {
  const id = randomUUID();
  await t.db.sql`
    INSERT INTO content_creation_requests (id, user_id, title, generated_output, settings)
    VALUES (${id}, ${owner}, 'legacy', ${t.db.sql.json(generatedOutput as never)}, ${t.db.sql.json(settings as never)})`;
  return id;
}

describe('legacy imageUrls', () => {
  it('serves the stored imageUrls of scenes that have no rows, and every other field as stored', async () => {
    const stored = {
      version: 2,
      scenes: [
        { prompt: 'one', imageUrls: ['https://old.test/1a.png', 'https://old.test/1b.png'], voice: 'x' },
        { prompt: 'two', index: 5, imageUrls: ['https://old.test/5a.png', null] },
      ],
    };
    const id = await insertLegacyProject(stored);
    const res = await t.call('GET', `/projects/${id}`);
    expect(res.status).toBe(200);
    expect(res.body.generatedOutput).toEqual({
      version: 2,
      scenes: [
        // A scene stored without an index carries its effective one (position + 1) in the answer.
        { ...stored.scenes[0], index: 1, images: [], staleImages: 0 },
        { ...stored.scenes[1], images: [], staleImages: 0 },
      ],
    });
    expect(res.body.settings).toEqual({ imagesPerScene: 1, aspectRatio: '16:9', style: null, provider: null, model: null });
  });

  it('generate fills only the missing slots and keeps every legacy image', async () => {
    const id = await insertLegacyProject({
      scenes: [
        { prompt: 'one', imageUrls: ['https://old.test/1a.png', 'https://old.test/1b.png'] },
        { prompt: 'two', imageUrls: ['https://old.test/2a.png', null] },
        { prompt: 'three' },
      ],
    });
    const res = await t.call('POST', `/projects/${id}/generate`);
    expect(res.status).toBe(202);
    const done = await t.waitForProject(id);
    const [one, two, three] = done.generatedOutput.scenes;
    expect(one.imageUrls).toEqual(['https://old.test/1a.png', 'https://old.test/1b.png']);
    expect(two.imageUrls[0]).toBe('https://old.test/2a.png');
    expect(two.imageUrls[1]).toMatch(/^http:\/\/sceneworks\.test\/files\/.+\.png$/);
    expect(three.imageUrls).toHaveLength(1);
    expect(three.imageUrls[0]).toMatch(/\.png$/);
    expect(done.progress).toEqual({ total: 5, queued: 0, running: 0, succeeded: 5, failed: 0 });
    expect(done.status).toBe('completed');
  });

  it('regenerating a legacy scene keeps its legacy image until the new one lands', async () => {
    const id = await insertLegacyProject({ scenes: [{ prompt: 'one', imageUrls: ['https://old.test/1a.png'] }, { prompt: 'two', imageUrls: ['https://old.test/2a.png'] }] });
    const res = await t.call('POST', `/projects/${id}/scenes/1/regenerate`, {});
    expect(res.status).toBe(202);
    expect(res.body.generatedOutput.scenes[0].imageUrls).toEqual(['https://old.test/1a.png']);
    const done = await t.waitForProject(id);
    expect(done.generatedOutput.scenes[0].imageUrls[0]).toMatch(/\.png$/);
    expect(done.generatedOutput.scenes[0].imageUrls[0]).not.toBe('https://old.test/1a.png');
    expect(done.generatedOutput.scenes[1].imageUrls).toEqual(['https://old.test/2a.png']);
  });

  it('survives messy legacy JSON', async () => {
    for (const output of [{}, { scenes: 'nope' }, { scenes: [null, 'x', { imageUrls: 'one' }] }, []]) {
      const id = await insertLegacyProject(output);
      const res = await t.call('GET', `/projects/${id}`);
      expect(res.status).toBe(200);
      expect(Array.isArray(res.body.generatedOutput.scenes)).toBe(true);
      expect((await t.call('POST', `/projects/${id}/generate`)).status).toBe(202);
    }
  });
});

describe('ownership', () => {
  it("answers 404 for someone else's project on every route, and never lists it", async () => {
    const other = randomUUID();
    const id = await insertLegacyProject({ scenes: [{ prompt: 'secret', imageUrls: ['https://old.test/s.png'] }] }, other);
    for (const [method, path] of [
      ['GET', `/projects/${id}`],
      ['GET', `/project/${id}`],
      ['POST', `/projects/${id}/generate`],
      ['POST', `/projects/${id}/scenes/1/regenerate`],
    ] as const) {
      const res = await t.call(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    const list = await t.call('GET', '/projects?limit=100');
    expect(list.body.items.map((p: any) => p.id)).not.toContain(id);
    const [{ n }] = (await t.db.sql`SELECT count(*)::int AS n FROM generated_images WHERE content_creation_request_id = ${id}`) as unknown as [{ n: number }];
    expect(n).toBe(0);
  });
});

describe('Idempotency-Key', () => {
  it('returns the first project for a retry and queues nothing new; another body is a 409', async () => {
    const key = `key-${randomUUID()}`;
    const body = { scenes: [{ prompt: 'once' }], imagesPerScene: 2 };
    const first = await t.call('POST', '/projects', body, { 'idempotency-key': key });
    const again = await t.call('POST', '/projects', body, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    const [{ n }] = (await t.db.sql`SELECT count(*)::int AS n FROM generated_images WHERE content_creation_request_id = ${first.body.id}`) as unknown as [{ n: number }];
    expect(n).toBe(2);
    const conflict = await t.call('POST', '/projects', { ...body, imagesPerScene: 3 }, { 'idempotency-key': key });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('CONFLICT');
  });

  it('creates one project for concurrent twins', async () => {
    const key = `twin-${randomUUID()}`;
    const body = { scenes: [{ prompt: 'twin' }] };
    const answers = await Promise.all(Array.from({ length: 8 }, () => t.call('POST', '/projects', body, { 'idempotency-key': key })));
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([202]));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
  });
});

describe('GET /projects', () => {
  it('pages newest first with an opaque cursor and filters by status', async () => {
    const fresh = await startTestApp({}, { runner: false });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push((await fresh.call('POST', '/projects', { title: `p${i}`, scenes: [{ prompt: 'x' }] })).body.id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = await fresh.call('GET', `/projects?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(3);
        seen.push(...page.body.items.map((p: any) => p.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(seen).toEqual([...ids].reverse());
      const item = (await fresh.call('GET', '/projects?limit=1')).body.items[0];
      expect(item).toEqual({ id: ids[6], title: 'p6', status: 'queued', progress: { total: 1, queued: 1, running: 0, succeeded: 0, failed: 0 }, createdAt: expect.any(String), updatedAt: expect.any(String) });
      expect((await fresh.call('GET', '/projects?status=queued')).body.items).toHaveLength(7);
      expect((await fresh.call('GET', '/projects?status=completed')).body.items).toHaveLength(0);
    } finally {
      await fresh.close();
    }
  });
});

describe('GET /projects?status=', () => {
  it('each status filter returns exactly the projects in that status', async () => {
    const fresh = await startTestApp({}, { runner: false });
    try {
      // Slot statuses of each project, and the project status they make.
      const shapes: Record<string, string[]> = {
        queued: ['queued', 'queued'],
        running: ['running', 'queued'],
        completed: ['succeeded', 'succeeded'],
        partial: ['succeeded', 'failed'],
        failed: ['failed', 'failed'],
      };
      const byStatus: Record<string, string> = {};
      for (const [status, slots] of Object.entries(shapes)) {
        const id = (await fresh.call('POST', '/projects', { title: status, scenes: [{ prompt: 'x' }], imagesPerScene: 2 })).body.id;
        for (const [imageIndex, slot] of slots.entries()) {
          await fresh.db.sql`UPDATE generated_images SET status = ${slot} WHERE content_creation_request_id = ${id} AND image_index = ${imageIndex}`;
        }
        byStatus[status] = id;
      }
      for (const status of Object.keys(shapes)) {
        const page = await fresh.call('GET', `/projects?status=${status}`);
        expect(page.status).toBe(200);
        expect(page.body.items.map((p: any) => [p.id, p.status])).toEqual([[byStatus[status], status]]);
      }
      // A page of a filter is a keyset page too: one per page, then no more.
      const first = await fresh.call('GET', '/projects?status=failed&limit=1');
      expect(first.body.nextCursor).toBeNull();
    } finally {
      await fresh.close();
    }
  });
});

describe('GET /projects/:id caching', () => {
  it('answers 304 to its ETag, and never serves a stale answer after any change to the rows', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'cache me' }], imagesPerScene: 2 });
    const done = await t.waitForProject(created.body.id);
    const first = await t.app.request(`/projects/${done.id}`);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/".+"$/);
    expect((await t.app.request(`/projects/${done.id}`, { headers: { 'if-none-match': etag } })).status).toBe(304);

    // A change made outside this process (another replica, an operator) is seen at once.
    await t.db.sql`UPDATE generated_images SET error = 'edited elsewhere' WHERE content_creation_request_id = ${done.id} AND image_index = 1`;
    const after = await t.call('GET', `/projects/${done.id}`);
    expect(after.headers.get('etag')).not.toBe(etag);
    expect(after.body.generatedOutput.scenes[0].images[1].error).toBe('edited elsewhere');

    // A deleted row, then a stored-JSON edit, too.
    await t.db.sql`DELETE FROM generated_images WHERE content_creation_request_id = ${done.id} AND image_index = 1`;
    expect((await t.call('GET', `/projects/${done.id}`)).body.generatedOutput.scenes[0].imageUrls).toHaveLength(1);
    await t.db.sql`UPDATE content_creation_requests SET title = 'renamed' WHERE id = ${done.id}`;
    expect((await t.call('GET', `/projects/${done.id}`)).body.title).toBe('renamed');
    expect((await t.call('GET', `/project/${done.id}`)).body.title).toBe('renamed');
  });
});

describe('projects with no owner (an adopted legacy database) in single-owner mode', () => {
  it('are the owner’s: read under both paths, listed, generated; another owner’s stay a 404', async () => {
    const unowned = await insertLegacyProject({ scenes: [{ prompt: 'legacy', imageUrls: ['https://old.test/a.png'] }, { prompt: 'new' }] }, null);
    const foreign = await insertLegacyProject({ scenes: [{ prompt: 'not mine' }] }, '00000000-0000-4000-8000-0000000000ff');

    for (const path of [`/projects/${unowned}`, `/project/${unowned}`]) {
      const res = await t.call('GET', path);
      expect(res.status).toBe(200);
      expect(res.body.generatedOutput.scenes[0].imageUrls).toEqual(['https://old.test/a.png']);
    }
    const listed: string[] = [];
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const page: any = await t.call('GET', `/projects?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      listed.push(...page.body.items.map((p: any) => p.id));
      cursor = page.body.nextCursor;
    }
    expect(listed).toContain(unowned);
    expect(listed).not.toContain(foreign);
    expect(new Set(listed).size).toBe(listed.length);

    expect((await t.call('POST', `/projects/${unowned}/generate`)).status).toBe(202);
    const done = await t.waitForProject(unowned);
    expect(done.generatedOutput.scenes[0].imageUrls).toEqual(['https://old.test/a.png']);
    expect(done.generatedOutput.scenes[1].imageUrls[0]).toMatch(/\.png$/);
    // Reading or generating it never gives it an owner: the data is left as adopted.
    const [row] = await t.db.sql<{ userId: string | null }[]>`SELECT user_id FROM content_creation_requests WHERE id = ${unowned}`;
    expect(row!.userId).toBeNull();

    for (const [method, path] of [['GET', `/projects/${foreign}`], ['GET', `/project/${foreign}`], ['POST', `/projects/${foreign}/generate`], ['GET', `/projects/${foreign}/events`]] as const) {
      expect((await t.call(method, path)).status).toBe(404);
    }
  });
});
