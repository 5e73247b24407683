import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requeueSceneSlots } from '../../src/db/images.ts';
import {
  claimQueuedSlots,
  extendLeases,
  markImageFailed,
  markImagesSucceeded,
  releaseLeases,
  type ClaimedSlot,
  type SucceededImage,
} from '../../src/db/queue.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { insertPendingProject } from '../support/slots.ts';

/**
 * The queue's fences, statement by statement: each write of an outcome must apply only to the
 * claim that currently holds the slot. The runner tests drive these through real generation;
 * here each fence is driven directly, so removing one fails a test deterministically.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const OWNER = '00000000-0000-4000-8000-0000000000aa';

const projectWithOneSlot = () => insertPendingProject(db.sql, OWNER, 1);

async function claimOf(projectId: string, worker: string): Promise<ClaimedSlot> {
  // Other files' slots never share this database; claim until we get this project's.
  const claimed = await claimQueuedSlots(db.sql, worker, 100, 60_000);
  const mine = claimed.find((c) => c.projectId === projectId);
  if (!mine) throw new Error('slot not claimed');
  return mine;
}

const image = (tag: string): SucceededImage => ({
  prompt: tag,
  url: `http://x/${tag}.png`,
  storageKey: `k/${tag}.png`,
  fullPrompt: tag,
  provider: 'local',
  model: null,
  seed: 1,
  width: 1,
  height: 1,
  mimeType: 'image/png',
  bytes: 1,
  sha256: tag,
  revisedPrompt: null,
  costUsd: null,
  providerRequestId: null,
});

async function rowOf(projectId: string) {
  const [row] = await db.sql<{ status: string; storageKey: string | null; generation: number; error: string | null; lockedBy: string | null }[]>`
    SELECT status, storage_key, generation, error, locked_by FROM generated_images WHERE content_creation_request_id = ${projectId}`;
  return row!;
}

describe('markImagesSucceeded', () => {
  it.each([
    ['stale claim first', false],
    ['current claim first', true],
  ])('one batch holding a superseded and a current claim of the same row commits only the current one (%s)', async (_, currentFirst) => {
    const projectId = await projectWithOneSlot();
    const old = await claimOf(projectId, 'w');
    await requeueSceneSlots(db.sql, projectId, 1, 1, 'p2', { ownerId: OWNER, spacing: 1 });
    const current = await claimOf(projectId, 'w');
    expect(current.generation).toBe(old.generation + 1);

    const stale = { slot: { id: old.id, generation: old.generation, attempts: old.attempts }, image: image('stale'), retries: 0 };
    const fresh = { slot: { id: current.id, generation: current.generation, attempts: current.attempts }, image: image('fresh'), retries: 0 };
    const results = await markImagesSucceeded(db.sql, 'w', currentFirst ? [fresh, stale] : [stale, fresh], 10);
    const byTag = currentFirst ? { fresh: results[0], stale: results[1] } : { stale: results[0], fresh: results[1] };
    expect(byTag.fresh).toEqual({ committed: true, previousKey: null });
    expect(byTag.stale).toEqual({ committed: false, previousKey: null });
    expect(await rowOf(projectId)).toMatchObject({ status: 'succeeded', storageKey: 'k/fresh.png', generation: current.generation });
  });

  it('a claim of another worker, or an older attempt, does not commit', async () => {
    const projectId = await projectWithOneSlot();
    const claim = await claimOf(projectId, 'w1');
    const fence = { id: claim.id, generation: claim.generation, attempts: claim.attempts };
    expect(await markImagesSucceeded(db.sql, 'w2', [{ slot: fence, image: image('other-worker'), retries: 0 }], 10)).toEqual([{ committed: false, previousKey: null }]);
    expect(await markImagesSucceeded(db.sql, 'w1', [{ slot: { ...fence, attempts: fence.attempts - 1 }, image: image('old-attempt'), retries: 0 }], 10)).toEqual([
      { committed: false, previousKey: null },
    ]);
    expect(await rowOf(projectId)).toMatchObject({ status: 'running', storageKey: null });
  });
});

describe('markImageFailed', () => {
  const failure = { error: 'boom', code: 'server', provider: 'local', fullPrompt: null, providerRequestId: null, retries: 0 };

  it('a superseded claim cannot fail the slot that a newer claim holds', async () => {
    const projectId = await projectWithOneSlot();
    const old = await claimOf(projectId, 'w');
    await requeueSceneSlots(db.sql, projectId, 1, 1, 'p2', { ownerId: OWNER, spacing: 1 });
    const current = await claimOf(projectId, 'w');
    expect(await markImageFailed(db.sql, 'w', { id: old.id, generation: old.generation, attempts: old.attempts }, failure)).toBe(false);
    expect(await rowOf(projectId)).toMatchObject({ status: 'running', error: null, lockedBy: 'w', generation: current.generation });
  });

  it('another worker, or an older attempt of the same generation, cannot fail it either', async () => {
    const projectId = await projectWithOneSlot();
    const claim = await claimOf(projectId, 'w1');
    const fence = { id: claim.id, generation: claim.generation, attempts: claim.attempts };
    expect(await markImageFailed(db.sql, 'w2', fence, failure)).toBe(false);
    expect(await markImageFailed(db.sql, 'w1', { ...fence, attempts: fence.attempts + 1 }, failure)).toBe(false);
    expect(await rowOf(projectId)).toMatchObject({ status: 'running', error: null });
    expect(await markImageFailed(db.sql, 'w1', fence, failure)).toBe(true);
    expect(await rowOf(projectId)).toMatchObject({ status: 'failed', error: 'boom', lockedBy: null });
  });
});

describe('releaseLeases and extendLeases', () => {
  it('hand back and extend only what this worker holds', async () => {
    const projectId = await projectWithOneSlot();
    const claim = await claimOf(projectId, 'w1');
    const fence = { id: claim.id, generation: claim.generation, attempts: claim.attempts };
    expect(await extendLeases(db.sql, 'w2', [claim.id], 60_000)).toBe(0);
    expect(await extendLeases(db.sql, 'w1', [claim.id], 60_000)).toBe(1);
    expect(await releaseLeases(db.sql, 'w2', [fence])).toBe(0);
    expect(await releaseLeases(db.sql, 'w1', [{ ...fence, generation: fence.generation - 1 }])).toBe(0);
    expect(await rowOf(projectId)).toMatchObject({ status: 'running', lockedBy: 'w1' });
    expect(await releaseLeases(db.sql, 'w1', [fence])).toBe(1);
    expect(await rowOf(projectId)).toMatchObject({ status: 'queued', lockedBy: null });
  });
});
