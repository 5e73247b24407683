import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeExpiredIdempotencyKeys } from '../../src/db/idempotency.ts';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';
import { createProject, generateMissing, getProject, regenerateScene, type ProjectsContext } from '../../src/projects/projects.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { gatedLocalProvider, until } from '../support/gated-provider.ts';

// Idempotency-Key on POST /projects/:id/generate and POST /projects/:id/scenes/:sceneIndex/regenerate.
// Counts come from the rows (generation is bumped once per queued generation of a slot) and
// from the provider's calls, filtered by a prompt unique to each test.

const gated = gatedLocalProvider();
let t: TestApp;
let ctx: ProjectsContext;
beforeAll(async () => {
  t = await startTestApp({ GENERATION_CONCURRENCY: '4' }, { providers: gated.providers });
  ctx = { sql: t.deps.db.sql, store: t.deps.store, log: t.deps.log, wake: () => t.deps.runner.wake(), maxPendingSlotsPerOwner: 10_000 };
});
afterAll(async () => {
  gated.open();
  await t.close();
});

const callsFor = (prompt: string) => gated.calls.filter((c) => c.prompt === prompt).length;

async function completedProject(prompts: string[], imagesPerScene: number, headers: Record<string, string> = {}) {
  const created = await t.call('POST', '/projects', { scenes: prompts.map((prompt) => ({ prompt })), imagesPerScene }, headers);
  expect(created.status).toBe(202);
  const done = await t.waitForProject(created.body.id);
  expect(done.status).toBe('completed');
  return done;
}

interface SlotRow {
  sceneIndex: number;
  imageIndex: number;
  status: string;
  generation: number;
  attempts: number;
}

async function slots(projectId: string, sceneIndex?: number): Promise<SlotRow[]> {
  return t.db.sql<SlotRow[]>`
    SELECT scene_index, image_index, status, generation, attempts FROM generated_images
    WHERE content_creation_request_id = ${projectId} ${sceneIndex === undefined ? t.db.sql`` : t.db.sql`AND scene_index = ${sceneIndex}`}
    ORDER BY scene_index, image_index`;
}

const generations = async (projectId: string, sceneIndex?: number) => (await slots(projectId, sceneIndex)).map((s) => s.generation);

async function keyRows(key: string) {
  return t.db.sql<{ ownerId: string; scope: string; projectId: string }[]>`
    SELECT owner_id, scope, project_id FROM idempotency_keys WHERE key = ${key} ORDER BY owner_id`;
}

const failAll = (projectId: string) =>
  t.db.sql`UPDATE generated_images SET status = 'failed', error = 'scripted failure' WHERE content_creation_request_id = ${projectId}`;

function expectConflict(res: { status: number; body: any }) {
  expect(res.status).toBe(409);
  expect(res.body).toEqual({ error: { code: 'CONFLICT', message: expect.any(String), requestId: expect.any(String), details: [] } });
}

describe('POST /projects/:id/generate with an Idempotency-Key', () => {
  it('does the work once: a retry answers 202 with the project as it is now and queues nothing', async () => {
    const prompt = `generate-once-${randomUUID()}`;
    const project = await completedProject([prompt], 2);
    expect(callsFor(prompt)).toBe(2);
    await failAll(project.id);
    const key = `gen-${randomUUID()}`;

    const first = await t.call('POST', `/projects/${project.id}/generate`, undefined, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    expect(first.body.id).toBe(project.id);
    expect(await generations(project.id)).toEqual([1, 1]);
    expect((await t.waitForProject(project.id)).status).toBe('completed');
    expect(callsFor(prompt)).toBe(4);

    // The images fail again; the same request again must not queue them.
    await failAll(project.id);
    const retry = await t.call('POST', `/projects/${project.id}/generate`, undefined, { 'idempotency-key': key });
    expect(retry.status).toBe(202);
    expect(retry.body.id).toBe(project.id);
    expect(retry.body.status).toBe('failed');
    expect(retry.body.progress).toEqual({ total: 2, queued: 0, running: 0, succeeded: 0, failed: 2 });
    expect(await slots(project.id)).toEqual([
      { sceneIndex: 1, imageIndex: 0, status: 'failed', generation: 1, attempts: 1 },
      { sceneIndex: 1, imageIndex: 1, status: 'failed', generation: 1, attempts: 1 },
    ]);
    expect(await keyRows(key)).toEqual([{ ownerId: LOCAL_OWNER_ID, scope: `generate:${project.id}`, projectId: project.id }]);

    // Another key is another request: it queues, once.
    const other = await t.call('POST', `/projects/${project.id}/generate`, undefined, { 'idempotency-key': `gen-${randomUUID()}` });
    expect(other.status).toBe(202);
    expect(await generations(project.id)).toEqual([2, 2]);
    expect((await t.waitForProject(project.id)).status).toBe('completed');
    expect(callsFor(prompt)).toBe(6);
  });
});

describe('conflicts', () => {
  it('the same key on another route, project, scene or body is a 409 that queues nothing', async () => {
    const prompt = `conflict-${randomUUID()}`;
    const project = await completedProject([prompt, `${prompt}-2`], 1);
    const other = await completedProject([`${prompt}-other`], 1);
    const key = `k-${randomUUID()}`;

    expect((await t.call('POST', `/projects/${project.id}/generate`, undefined, { 'idempotency-key': key })).status).toBe(202);
    expectConflict(await t.call('POST', `/projects/${project.id}/scenes/1/regenerate`, undefined, { 'idempotency-key': key }));
    expectConflict(await t.call('POST', `/projects/${other.id}/generate`, undefined, { 'idempotency-key': key }));

    const regen = `r-${randomUUID()}`;
    const r = (path: string, body?: unknown) => t.call('POST', path, body, { 'idempotency-key': regen });
    expect((await r(`/projects/${project.id}/scenes/1/regenerate`, { prompt: 'first body' })).status).toBe(202);
    expect((await r(`/projects/${project.id}/scenes/1/regenerate`, { prompt: 'first body' })).status).toBe(202);
    expectConflict(await r(`/projects/${project.id}/scenes/1/regenerate`, { prompt: 'another body' }));
    expectConflict(await r(`/projects/${project.id}/scenes/1/regenerate`, { prompt: 'first body', imagesPerScene: 2 }));
    expectConflict(await r(`/projects/${project.id}/scenes/1/regenerate`));
    expectConflict(await r(`/projects/${project.id}/scenes/2/regenerate`, { prompt: 'first body' }));
    expectConflict(await r(`/projects/${other.id}/scenes/1/regenerate`, { prompt: 'first body' }));
    expectConflict(await r(`/projects/${project.id}/generate`));

    // Only the first regenerate did anything: one generation of scene 1, nothing elsewhere.
    expect(await generations(project.id)).toEqual([1, 0]);
    expect(await generations(other.id)).toEqual([0]);
    const after = await t.waitForProject(project.id);
    expect(after.generatedOutput.scenes.map((s: any) => s.prompt)).toEqual(['first body', `${prompt}-2`]);
    expect(callsFor('first body')).toBe(1);
  });

  it('one key sent at once to two projects (no shared project lock): one 202, one 409, one project queued', async () => {
    const a = await completedProject([`race-a-${randomUUID()}`], 2);
    const b = await completedProject([`race-b-${randomUUID()}`], 2);
    await failAll(a.id);
    await failAll(b.id);
    const key = `race-${randomUUID()}`;
    const answers = await Promise.all(
      [a.id, b.id, a.id, b.id].map((id) => t.call('POST', `/projects/${id}/generate`, undefined, { 'idempotency-key': key })),
    );
    const winner = (await keyRows(key))[0]!.projectId;
    const loser = winner === a.id ? b.id : a.id;
    expect(answers.map((r, i) => r.status === 202 === ([a.id, b.id, a.id, b.id][i] === winner))).toEqual([true, true, true, true]);
    for (const r of answers.filter((r) => r.status !== 202)) expectConflict(r);
    expect(await generations(winner)).toEqual([1, 1]);
    expect(await slots(loser)).toEqual([
      { sceneIndex: 1, imageIndex: 0, status: 'failed', generation: 0, attempts: 1 },
      { sceneIndex: 1, imageIndex: 1, status: 'failed', generation: 0, attempts: 1 },
    ]);
    await t.waitForProject(winner);
  });

  it('a key POST /projects used is a 409 on the actions', async () => {
    const key = `create-${randomUUID()}`;
    const project = await completedProject([`created-${randomUUID()}`], 1, { 'idempotency-key': key });
    expectConflict(await t.call('POST', `/projects/${project.id}/generate`, undefined, { 'idempotency-key': key }));
    expectConflict(await t.call('POST', `/projects/${project.id}/scenes/1/regenerate`, undefined, { 'idempotency-key': key }));
    expect(await generations(project.id)).toEqual([0]);
    expect(await keyRows(key)).toEqual([]);
  });

  it('a key an action used is a 409 on POST /projects, which creates nothing', async () => {
    const key = `action-${randomUUID()}`;
    const project = await completedProject([`acted-${randomUUID()}`], 1);
    expect((await t.call('POST', `/projects/${project.id}/generate`, undefined, { 'idempotency-key': key })).status).toBe(202);
    const [{ n: before }] = (await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`) as unknown as [{ n: number }];
    expectConflict(await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }] }, { 'idempotency-key': key }));
    const [{ n: after }] = (await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`) as unknown as [{ n: number }];
    expect(after).toBe(before);
  });

  it('a request that fails does not use up its key', async () => {
    const project = await completedProject([`fails-${randomUUID()}`], 1);
    const key = `f-${randomUUID()}`;
    const missing = await t.call('POST', `/projects/${project.id}/scenes/9/regenerate`, undefined, { 'idempotency-key': key });
    expect(missing.status).toBe(404);
    expect(await keyRows(key)).toEqual([]);
    expect((await t.call('POST', `/projects/${project.id}/scenes/1/regenerate`, undefined, { 'idempotency-key': key })).status).toBe(202);
    expect(await generations(project.id)).toEqual([1]);
    await t.waitForProject(project.id);
  });

  it('validates the header like POST /projects (at most 200 characters)', async () => {
    const project = await completedProject([`header-${randomUUID()}`], 1);
    const long = { 'idempotency-key': 'x'.repeat(201) };
    for (const path of [`/projects/${project.id}/generate`, `/projects/${project.id}/scenes/1/regenerate`]) {
      const res = await t.call('POST', path, undefined, long);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect((await t.call('POST', `/projects/${project.id}/scenes/1/regenerate`, undefined, { 'idempotency-key': 'x'.repeat(200) })).status).toBe(202);
    expect(await generations(project.id)).toEqual([1]);
    await t.waitForProject(project.id);
  });
});

describe('POST /projects/:id/scenes/:sceneIndex/regenerate double-clicked', () => {
  it('five identical requests at once with one key: all 202, one generation, paid once', async () => {
    const prompt = `double-${randomUUID()}`;
    const project = await completedProject([prompt, `${prompt}-untouched`], 3);
    const newPrompt = `double-new-${randomUUID()}`;
    const key = `click-${randomUUID()}`;

    const answers = await Promise.all(
      Array.from({ length: 5 }, () => t.call('POST', `/projects/${project.id}/scenes/1/regenerate`, { prompt: newPrompt }, { 'idempotency-key': key })),
    );
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    for (const a of answers) {
      expect(a.body.id).toBe(project.id);
      expect(a.body.generatedOutput.scenes[0].prompt).toBe(newPrompt);
    }
    expect(await generations(project.id, 1)).toEqual([1, 1, 1]);
    expect(await generations(project.id, 2)).toEqual([0, 0, 0]);
    expect(await keyRows(key)).toHaveLength(1);

    expect((await t.waitForProject(project.id)).status).toBe('completed');
    expect(callsFor(newPrompt)).toBe(3);
  });

  it('without a key, two regenerates are two requests: both queue and both are paid', async () => {
    const project = await completedProject([`nokey-${randomUUID()}`], 2);
    const newPrompt = `nokey-new-${randomUUID()}`;
    gated.close();
    try {
      expect((await t.call('POST', `/projects/${project.id}/scenes/1/regenerate`, { prompt: newPrompt })).status).toBe(202);
      await until(() => callsFor(newPrompt) === 2, 'the first generation of both slots in flight');
      expect((await t.call('POST', `/projects/${project.id}/scenes/1/regenerate`, { prompt: newPrompt })).status).toBe(202);
      expect(await generations(project.id)).toEqual([2, 2]);
    } finally {
      gated.open();
    }
    expect((await t.waitForProject(project.id)).status).toBe('completed');
    expect(callsFor(newPrompt)).toBe(4);
    expect(await generations(project.id)).toEqual([2, 2]);
  });
});

/** A scope of one owner, who sees only their own projects. */
const only = (ownerId: string) => ({ ownerId, unowned: false });

describe('POST /projects Idempotency-Key expiry', () => {
  it('a key older than 24 h is free again: another body under it creates a new project', async () => {
    const key = `post-${randomUUID()}`;
    const first = await t.call('POST', '/projects', { scenes: [{ prompt: 'yesterday' }] }, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    // Within the window another body is a conflict...
    expect((await t.call('POST', '/projects', { scenes: [{ prompt: 'today' }] }, { 'idempotency-key': key })).status).toBe(409);
    await t.db.sql`UPDATE content_creation_requests SET created_at = now() - interval '25 hours' WHERE id = ${first.body.id}`;
    // ...after it, a new request: a new project, and the key is now the new one's.
    const second = await t.call('POST', '/projects', { scenes: [{ prompt: 'today' }] }, { 'idempotency-key': key });
    expect(second.status).toBe(202);
    expect(second.body.id).not.toBe(first.body.id);
    const retry = await t.call('POST', '/projects', { scenes: [{ prompt: 'today' }] }, { 'idempotency-key': key });
    expect(retry.body.id).toBe(second.body.id);
  });
});

describe('owners and expiry (domain level)', () => {
  it('the same key of two owners is two keys', async () => {
    const otherOwner = randomUUID();
    const mine = await completedProject([`owner-a-${randomUUID()}`], 2);
    const { project: theirs } = await createProject(ctx, only(otherOwner),
      { scenes: [{ prompt: `owner-b-${randomUUID()}` }], imagesPerScene: 2, aspectRatio: '16:9', provider: 'local' },
      undefined,
    );
    await t.waitForProject(mine.id);
    const key = `shared-${randomUUID()}`;

    for (let round = 0; round < 2; round++) {
      await regenerateScene(ctx, only(LOCAL_OWNER_ID), mine.id, 1, {}, key);
      await regenerateScene(ctx, only(otherOwner), theirs.id, 1, {}, key);
      // The second round is a retry of each owner's own request: nothing new.
      expect(await generations(mine.id)).toEqual([1, 1]);
      expect(await generations(theirs.id)).toEqual([1, 1]);
    }
    expect((await keyRows(key)).map((k) => [k.ownerId, k.projectId])).toEqual(
      [
        [LOCAL_OWNER_ID, mine.id],
        [otherOwner, theirs.id],
      ].sort((a, b) => a[0]!.localeCompare(b[0]!)),
    );

    // Each owner's key is bound to that owner's own request.
    await expect(generateMissing(ctx, only(otherOwner), theirs.id, key)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(generateMissing(ctx, only(LOCAL_OWNER_ID), mine.id, key)).rejects.toMatchObject({ code: 'CONFLICT' });
    // Someone else's project is not found, and the attempt takes no key.
    const fresh = `fresh-${randomUUID()}`;
    await expect(regenerateScene(ctx, only(otherOwner), mine.id, 1, {}, fresh)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await keyRows(fresh)).toEqual([]);
    expect(await generations(mine.id)).toEqual([1, 1]);
    await t.waitForProject(mine.id);
    await until(async () => (await getProject(ctx, only(otherOwner), theirs.id)).status === 'completed', "the other owner's project to complete");
  });

  it('a key older than 24 h is free again, and the purge deletes only expired keys', async () => {
    const project = await completedProject([`expiry-${randomUUID()}`], 1);
    const key = `old-${randomUUID()}`;
    await regenerateScene(ctx, only(LOCAL_OWNER_ID), project.id, 1, { prompt: 'yesterday' }, key);
    expect(await generations(project.id)).toEqual([1]);
    await t.db.sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = ${key}`;

    // Another body under the expired key: a new request, done once.
    await regenerateScene(ctx, only(LOCAL_OWNER_ID), project.id, 1, { prompt: 'today' }, key);
    await regenerateScene(ctx, only(LOCAL_OWNER_ID), project.id, 1, { prompt: 'today' }, key);
    expect(await generations(project.id)).toEqual([2]);
    expect(await keyRows(key)).toHaveLength(1);
    await t.waitForProject(project.id);

    const live = (await t.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys`)[0]!.n;
    const expired = [`old-${randomUUID()}`, `old-${randomUUID()}`];
    for (const k of expired) await generateMissing(ctx, only(LOCAL_OWNER_ID), project.id, k);
    await t.db.sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = ANY(${expired})`;
    expect(await purgeExpiredIdempotencyKeys(t.db.sql, 24 * 60 * 60 * 1000)).toBe(2);
    expect((await t.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM idempotency_keys`)[0]!.n).toBe(live);
  });
});
