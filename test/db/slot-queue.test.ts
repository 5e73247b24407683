import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requeueFailedSlots, requeueSceneSlots } from '../../src/db/images.ts';
import {
  claimQueuedSlots,
  extendLeases,
  markImageFailed,
  markImagesSucceeded,
  recoverExpiredLeases,
  releaseLeases,
  vacuumQueue,
} from '../../src/db/queue.ts';
import { createRunner } from '../../src/generation/runner.ts';
import { createLogger } from '../../src/log.ts';
import { until } from '../support/gated-provider.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { insertPendingProject, storedImage } from '../support/slots.ts';

/**
 * slot_queue (migration 1765584000000) holds exactly the pending (queued or running) slots
 * of generated_images with their queue fields, after any statement, whoever made it; the
 * claim reads its order from it; the runner vacuums it.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const OWNER = '00000000-0000-4000-8000-0000000000e1';
const Q = { ownerId: OWNER, spacing: 1 };

const project = (slots: number) => insertPendingProject(db.sql, OWNER, slots);

/** Rows in one and not the other: none. */
async function mismatches(): Promise<unknown[]> {
  const rows = await db.sql`
    (SELECT 'missing' AS what, id, content_creation_request_id AS project_id, status, queue_rank, queued_at, locked_until, owner_id
     FROM generated_images WHERE status IN ('queued', 'running')
     EXCEPT SELECT 'missing', id, project_id, status, queue_rank, queued_at, locked_until, owner_id FROM slot_queue)
    UNION ALL
    (SELECT 'extra', id, project_id, status, queue_rank, queued_at, locked_until, owner_id FROM slot_queue
     EXCEPT SELECT 'extra', id, content_creation_request_id, status, queue_rank, queued_at, locked_until, owner_id
     FROM generated_images WHERE status IN ('queued', 'running'))`;
  return [...rows];
}

const image = storedImage;
const failure = { error: 'e', code: 'x', provider: 'local', fullPrompt: null, providerRequestId: null, retries: 0 };

describe('slot_queue mirrors the pending slots', () => {
  it('through insert, claim, heartbeat, commit, failure, requeue, regenerate, release, expiry and deletes', async () => {
    const a = await project(6);
    const b = await project(3);
    expect(await mismatches()).toEqual([]);
    expect((await db.sql`SELECT 1 FROM slot_queue WHERE project_id IN (${a}, ${b})`).count).toBe(9);

    const claimed = (await claimQueuedSlots(db.sql, 'w1', 100, 60_000)).filter((c) => c.projectId === a || c.projectId === b);
    expect(claimed).toHaveLength(9);
    expect(await mismatches()).toEqual([]);
    await extendLeases(db.sql, 'w1', claimed.map((c) => c.id), 120_000); // the heartbeat moves locked_until
    expect(await mismatches()).toEqual([]);

    const [s0, s1, s2, s3, s4, s5, ...rest] = claimed;
    await markImagesSucceeded(db.sql, 'w1', [s0!, s1!].map((slot, i) => ({ slot, image: image(`${slot.id}-${i}`), retries: 0 })), 10);
    await markImageFailed(db.sql, 'w1', s2!, failure);
    await releaseLeases(db.sql, 'w1', [s3!]);
    expect(await mismatches()).toEqual([]);

    // A lease that expired: recovery puts the slot back in the queue.
    await db.sql`UPDATE generated_images SET locked_until = now() - interval '1 second' WHERE id = ${s4!.id}`;
    expect(await mismatches()).toEqual([]);
    await recoverExpiredLeases(db.sql, 3);
    expect(await mismatches()).toEqual([]);
    expect((await db.sql`SELECT status FROM slot_queue WHERE id = ${s4!.id}`)[0]).toEqual({ status: 'queued' });

    await requeueFailedSlots(db.sql, s2!.projectId, [{ sceneIndex: 1, prompt: 'p' }], Q);
    await requeueSceneSlots(db.sql, a, 1, 6, 'a new prompt', Q);
    expect(await mismatches()).toEqual([]);

    await db.sql`DELETE FROM generated_images WHERE id = ${s5!.id}`;
    await db.sql`DELETE FROM content_creation_requests WHERE id = ${b}`;
    expect(await mismatches()).toEqual([]);
    expect(rest.length).toBeGreaterThan(0);
  });

  it('many claimers, committers and failers at once', async () => {
    const ids = await Promise.all(Array.from({ length: 5 }, () => project(40)));
    // The slots the test before left pending are not this test's.
    await db.sql`UPDATE generated_images SET status = 'failed', locked_by = NULL, locked_until = NULL WHERE status IN ('queued', 'running') AND NOT content_creation_request_id = ANY(${ids}::uuid[])`;
    const work = Array.from({ length: 6 }, async (_, w) => {
      for (;;) {
        const claimed = await claimQueuedSlots(db.sql, `w${w}`, 7, 60_000);
        if (claimed.length === 0) return;
        const [first, ...others] = claimed;
        await markImageFailed(db.sql, `w${w}`, first!, failure);
        await markImagesSucceeded(db.sql, `w${w}`, others.map((slot) => ({ slot, image: image(`${slot.id}-m`), retries: 0 })), 10);
      }
    });
    await Promise.all(work);
    expect(await mismatches()).toEqual([]);
    expect((await db.sql`SELECT 1 FROM slot_queue`).count).toBe(0);
    expect((await db.sql`SELECT 1 FROM generated_images WHERE content_creation_request_id = ANY(${ids}::uuid[]) AND status IN ('succeeded', 'failed')`).count).toBe(200);
  });
});

describe('vacuuming slot_queue', () => {
  const vacuums = async () => {
    await db.sql`SELECT pg_stat_clear_snapshot()`;
    const [row] = await db.sql<{ n: number }[]>`SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = 'slot_queue'`;
    return row!.n;
  };

  it('vacuumQueue vacuums it', async () => {
    const before = await vacuums();
    await vacuumQueue(db.sql);
    expect(await vacuums()).toBe(before + 1);
  });

  it('the runner vacuums it on its own, every queueVacuumMs', async () => {
    const before = await vacuums();
    const runner = createRunner({
      sql: db.sql, providers: new Map(), defaultProvider: 'local',
      store: { name: 'none', put: async () => ({ url: null }), remove: async () => {}, get: async () => undefined },
      log: createLogger('silent'), concurrency: 1, leaseMs: 60_000, pollIntervalMs: 20, maxAttempts: 1, retryBaseMs: 1,
      providerTimeoutMs: 1_000, versionsKept: 0, queueVacuumMs: 50,
    });
    runner.start();
    try {
      await until(async () => (await vacuums()) >= before + 2, 'two vacuums by the runner', 10_000);
    } finally {
      await runner.stop(0);
    }
  });
});
