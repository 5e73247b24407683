import { afterAll, beforeAll, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { Scope } from '../../src/db/scope.ts';
import { createProject, regenerateScene, type ProjectsContext } from '../../src/projects/projects.ts';
import { createLocalProvider } from '../../src/providers/local.ts';
import type { ImageProvider } from '../../src/providers/provider.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { until } from '../support/gated-provider.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ GENERATION_CONCURRENCY: '2', LOCAL_PROVIDER_DELAY_MS: '20' });
});
afterAll(() => t.close());

async function succeeded(projectId: string): Promise<number> {
  const [row] = (await t.db.sql`SELECT count(*)::int AS n FROM generated_images WHERE content_creation_request_id = ${projectId} AND status = 'succeeded'`) as unknown as [{ n: number }];
  return row.n;
}

it('a small project submitted after a big one is served at once, not after it', async () => {
  const big = await t.call('POST', '/projects', { scenes: Array.from({ length: 50 }, (_, i) => ({ prompt: `big ${i}` })), imagesPerScene: 4, aspectRatio: '1:1' });
  const small = await t.call('POST', '/projects', { scenes: [{ prompt: 'small a' }, { prompt: 'small b' }], imagesPerScene: 2, aspectRatio: '1:1' });
  const done = await t.waitForProject(small.body.id, 60_000);
  expect(done.status).toBe('completed');
  // Round-robin from the moment it was queued: the big project is far from done.
  expect(await succeeded(big.body.id)).toBeLessThan(40);
  const ranks = await t.db.sql<{ queueRank: number }[]>`
    SELECT queue_rank FROM generated_images WHERE content_creation_request_id = ${small.body.id} ORDER BY queue_rank`;
  expect(ranks.map((r) => r.queueRank)).toHaveLength(4);
  expect((await t.waitForProject(big.body.id, 120_000)).status).toBe('completed');
});

it('two projects queued together interleave', async () => {
  const a = await t.call('POST', '/projects', { scenes: Array.from({ length: 20 }, (_, i) => ({ prompt: `a ${i}` })), aspectRatio: '1:1' });
  const b = await t.call('POST', '/projects', { scenes: Array.from({ length: 20 }, (_, i) => ({ prompt: `b ${i}` })), aspectRatio: '1:1' });
  await t.waitForProject(a.body.id, 60_000);
  // When the first of the two completes, the other is well on its way (in FIFO order it
  // would not have started: its slots were queued behind all 20 of the first).
  expect(await succeeded(b.body.id)).toBeGreaterThanOrEqual(10);
  await t.waitForProject(b.body.id, 60_000);
});

/**
 * Owner A's backlog is made (by `makeBacklog`, runner stopped), then owner B queues one image and
 * the runner starts: the position of B's image among the provider calls. GENERATION_CONCURRENCY
 * 4: a claim wave is 2 x 4 = 8 slots.
 */
async function otherOwnersTurn(
  maxPendingSlotsPerOwner: number,
  makeBacklog: (ctx: ProjectsContext, a: Scope, u: TestApp) => Promise<void>,
): Promise<number> {
  const calls: string[] = [];
  const local = createLocalProvider({ delayMs: 5 });
  const recording: ImageProvider = {
    name: 'local',
    defaultModel: null,
    generate: (request) => {
      calls.push(request.prompt);
      return local.generate(request);
    },
  };
  const u = await startTestApp(
    { GENERATION_CONCURRENCY: '4', MAX_PENDING_SLOTS_PER_OWNER: String(maxPendingSlotsPerOwner) },
    { providers: new Map([['local', recording]]), runner: false },
  );
  try {
    const ctx = { sql: u.deps.db.sql, store: u.deps.store, log: u.deps.log, wake: () => {}, maxPendingSlotsPerOwner };
    await makeBacklog(ctx, { ownerId: randomUUID(), unowned: false }, u);
    const b = { ownerId: randomUUID(), unowned: false };
    await createProject(ctx, b, { scenes: [{ prompt: 'b first' }], imagesPerScene: 1, aspectRatio: '1:1', provider: 'local' }, undefined);
    u.deps.runner.start();
    await until(() => calls.includes('b first'), "the other owner's image", 60_000);
    return calls.indexOf('b first');
  } finally {
    await u.close();
  }
}

it('fair across owners: with one owner holding a 10,000-slot backlog in 20 projects, another owner’s first image starts in the first claim wave', async () => {
  const turn = await otherOwnersTurn(20_000, async (ctx, a) => {
    for (let p = 0; p < 20; p++) {
      const scenes = Array.from({ length: 125 }, (_, i) => ({ prompt: `a${p} scene ${i}` }));
      await createProject(ctx, a, { scenes, imagesPerScene: 4, aspectRatio: '1:1', provider: 'local' }, undefined);
    }
  });
  expect(turn).toBeLessThan(8);
});

it('fair across owners whatever made the backlog: 50 regenerates of one project do not crowd out another owner’s first image', async () => {
  const turn = await otherOwnersTurn(10_000, async (ctx, a, u) => {
    const scenes = Array.from({ length: 50 }, (_, i) => ({ prompt: `a scene ${i}` }));
    const { project } = await createProject(ctx, a, { scenes, imagesPerScene: 4, aspectRatio: '1:1', provider: 'local' }, undefined);
    await u.db.sql`UPDATE generated_images SET status = 'succeeded' WHERE content_creation_request_id = ${project.id}`;
    // One project, its 50 scenes regenerated one by one: 200 slots queued by 50 requests.
    for (let scene = 1; scene <= 50; scene++) await regenerateScene(ctx, a, project.id, scene, {});
  });
  expect(turn).toBeLessThan(8);
});
