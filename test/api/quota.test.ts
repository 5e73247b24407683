import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject } from '../../src/projects/projects.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  // No runner: slots stay queued, so what is pending is exactly what was queued.
  t = await startTestApp({ MAX_PENDING_SLOTS_PER_OWNER: '10' }, { runner: false });
});
afterAll(() => t.close());

const count = async (table: 'content_creation_requests' | 'generated_images') =>
  ((await t.db.sql`SELECT count(*)::int AS n FROM ${t.db.sql(table)}`) as unknown as [{ n: number }])[0].n;
const project = (slots: number, prompt = 'p') => ({ scenes: Array.from({ length: slots }, (_, i) => ({ prompt: `${prompt} ${i}` })) });

describe('MAX_PENDING_SLOTS_PER_OWNER', () => {
  it('a project that would pass it is a 429 QUOTA_EXCEEDED and nothing of it is stored; up to it is fine', async () => {
    const first = await t.call('POST', '/projects', project(8));
    expect(first.status).toBe(202);
    const before = [await count('content_creation_requests'), await count('generated_images')];
    const refused = await t.call('POST', '/projects', project(3), { 'idempotency-key': 'k-over' });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('QUOTA_EXCEEDED');
    expect(refused.body.error.message).toMatch(/limit is 10/);
    expect([await count('content_creation_requests'), await count('generated_images')]).toEqual(before);
    // The refused request did not use up its Idempotency-Key.
    expect((await t.call('POST', '/projects', project(2), { 'idempotency-key': 'k-over' })).status).toBe(202);

    // At the limit: a regenerate that adds slots, and a generate that queues more, are refused and change nothing.
    const growing = await t.call('POST', `/projects/${first.body.id}/scenes/1/regenerate`, { prompt: 'changed', imagesPerScene: 2 });
    expect(growing.status).toBe(429);
    const after = await t.call('GET', `/projects/${first.body.id}`);
    expect(after.body.generatedOutput.scenes[0].prompt).toBe('p 0');
    expect(after.body.progress.total).toBe(8);
    // A regenerate that adds nothing (its slot is already queued) is not refused.
    expect((await t.call('POST', `/projects/${first.body.id}/scenes/1/regenerate`, { prompt: 'same count' })).status).toBe(202);

    // The limit lowered below what the owner has pending: what adds nothing still works, what adds is refused.
    const lowered = await startTestApp({ MAX_PENDING_SLOTS_PER_OWNER: '5' }, { db: t.db, runner: false });
    try {
      expect((await lowered.call('POST', `/projects/${first.body.id}/scenes/2/regenerate`, { prompt: 'still 10 pending' })).status).toBe(202);
      expect((await lowered.call('POST', '/projects', project(1))).status).toBe(429);
    } finally {
      await lowered.close();
    }
  });

  it('finished images free the quota, and each owner has their own', async () => {
    await t.db.sql`UPDATE generated_images SET status = 'succeeded'`;
    expect((await t.call('POST', '/projects', project(10))).status).toBe(202);
    const ctx = { sql: t.deps.db.sql, store: t.deps.store, log: t.deps.log, wake: () => {}, maxPendingSlotsPerOwner: 10 };
    const other = { ownerId: randomUUID(), unowned: false };
    const input = { ...project(10), imagesPerScene: 1, aspectRatio: '1:1', provider: 'local' };
    await expect(createProject(ctx, other, input, undefined)).resolves.toMatchObject({ created: true });
    await expect(createProject(ctx, other, { ...input, scenes: [{ prompt: 'one more' }] }, undefined)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
  });

  it('a generate that would queue failed slots past it is refused and changes nothing; with room it queues them', async () => {
    await t.db.sql`UPDATE generated_images SET status = 'succeeded'`;
    const failing = await t.call('POST', '/projects', project(4, 'to retry'));
    expect(failing.status).toBe(202);
    const id = failing.body.id as string;
    await t.db.sql`UPDATE generated_images SET status = 'failed', error = 'failed in the test' WHERE content_creation_request_id = ${id}`;
    const filler = await t.call('POST', '/projects', project(7, 'filler'));
    expect(filler.status).toBe(202);
    const slotsOf = () => t.db.sql`SELECT id, status, generation, error FROM generated_images WHERE content_creation_request_id = ${id} ORDER BY id`;
    const before = await slotsOf();

    // 7 pending + 4 failed queued again = 11 > 10.
    const refused = await t.call('POST', `/projects/${id}/generate`);
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('QUOTA_EXCEEDED');
    expect(await slotsOf()).toEqual(before);

    // Two of the filler's finish: 5 + 4 = 9 fits.
    await t.db.sql`UPDATE generated_images SET status = 'succeeded'
      WHERE id IN (SELECT id FROM generated_images WHERE content_creation_request_id = ${filler.body.id} ORDER BY id LIMIT 2)`;
    expect((await t.call('POST', `/projects/${id}/generate`)).status).toBe(202);
    const after = await slotsOf();
    expect(after.map((s) => s.status)).toEqual(['queued', 'queued', 'queued', 'queued']);
    expect(after.map((s) => s.generation)).toEqual(before.map((s) => s.generation + 1));
  });

  it('requests racing for the last slots cannot pass it together', async () => {
    await t.db.sql`UPDATE generated_images SET status = 'succeeded'`;
    const results = await Promise.all(Array.from({ length: 12 }, () => t.call('POST', '/projects', project(3, 'race'))));
    expect(results.filter((r) => r.status === 202)).toHaveLength(3);
    expect(results.filter((r) => r.status === 429)).toHaveLength(9);
    const [{ n }] = (await t.db.sql`SELECT count(*)::int AS n FROM generated_images WHERE status IN ('queued', 'running')`) as unknown as [{ n: number }];
    expect(n).toBe(9);
  });
});
