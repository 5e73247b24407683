import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

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
