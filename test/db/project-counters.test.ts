import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findProjectVersion, foldSlotChanges, listProjectSummaries } from '../../src/db/projects.ts';
import { claimQueuedSlots, extendLeases, markImageFailed, markImagesSucceeded, type ClaimedSlot } from '../../src/db/queue.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { insertPendingProject, storedImage } from '../support/slots.ts';

/**
 * The counts, status and images_version on each project row (migrations 1764979200000 and
 * 1765411200000) must equal what its slots say once the changes are folded, whatever ran
 * before; a listing must see every change committed before it; and no writer of slots may
 * wait for its project's row.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const OWNER = '00000000-0000-4000-8000-0000000000bb';
const SCOPE = { ownerId: OWNER, unowned: false };

const project = (slots: number) => insertPendingProject(db.sql, OWNER, slots);

async function claimAll(projectId: string, worker: string): Promise<ClaimedSlot[]> {
  const claimed = await claimQueuedSlots(db.sql, worker, 1000, 60_000);
  return claimed.filter((c) => c.projectId === projectId);
}

const image = storedImage;

/** Projects whose row disagrees with their slots once the pending changes are folded: none, whatever ran before. */
async function disagreeing(): Promise<unknown[]> {
  await foldSlotChanges(db.sql);
  const rows = await db.sql`
    SELECT p.id, p.status, p.slots_total, p.slots_queued, p.slots_running, p.slots_succeeded, p.slots_failed, c.*
    FROM content_creation_requests p
    LEFT JOIN LATERAL (
      SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'queued')::int AS queued,
             count(*) FILTER (WHERE status = 'running')::int AS running, count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
             count(*) FILTER (WHERE status = 'failed')::int AS failed
      FROM generated_images i WHERE i.content_creation_request_id = p.id
    ) c ON true
    WHERE (p.slots_total, p.slots_queued, p.slots_running, p.slots_succeeded, p.slots_failed)
          IS DISTINCT FROM (c.total, c.queued, c.running, c.succeeded, c.failed)`;
  return [...rows];
}

describe('slot counts on the project row', () => {
  it('follow every insert, claim, success, failure and delete, and give the status the API derives', async () => {
    const id = await project(4);
    const status = async () => {
      await foldSlotChanges(db.sql);
      return ((await db.sql`SELECT status FROM content_creation_requests WHERE id = ${id}`) as unknown as [{ status: string }])[0].status;
    };
    expect(await status()).toBe('queued');
    const [a, b, c, d] = await claimAll(id, 'w1');
    expect(await status()).toBe('running');
    const results = await markImagesSucceeded(db.sql, 'w1', [a!, b!].map((s, i) => ({ slot: s, image: image(`${id}-${i}`), retries: 0 })), 10);
    expect(results.every((r) => r.committed)).toBe(true);
    await markImageFailed(db.sql, 'w1', c!, { error: 'e', code: 'x', provider: 'local', fullPrompt: null, providerRequestId: null, retries: 0 });
    expect(await status()).toBe('running');
    await markImageFailed(db.sql, 'w1', d!, { error: 'e', code: 'x', provider: 'local', fullPrompt: null, providerRequestId: null, retries: 0 });
    expect(await status()).toBe('partial');
    await db.sql`DELETE FROM generated_images WHERE id = ${a!.id}`;
    expect(await disagreeing()).toEqual([]);
    await db.sql`DELETE FROM generated_images WHERE content_creation_request_id = ${id} AND status = 'succeeded'`;
    expect(await status()).toBe('failed');
    await db.sql`DELETE FROM generated_images WHERE content_creation_request_id = ${id}`;
    expect(await status()).toBe('completed'); // no slots at all, as projectStatus() says
    expect(await disagreeing()).toEqual([]);
  });

  it('a statement touching many projects at once counts each', async () => {
    const ids = await Promise.all([1, 2, 3].map(() => project(3)));
    await db.sql`UPDATE generated_images SET status = 'failed' WHERE content_creation_request_id = ANY(${ids}::uuid[]) AND image_index = 0`;
    await db.sql`UPDATE generated_images SET status = 'succeeded' WHERE content_creation_request_id = ANY(${ids}::uuid[]) AND image_index > 0`;
    expect(await disagreeing()).toEqual([]);
    const rows = await db.sql<{ status: string }[]>`SELECT status FROM content_creation_requests WHERE id = ANY(${ids}::uuid[])`;
    expect(rows.map((r) => r.status)).toEqual(['partial', 'partial', 'partial']);
  });
});

describe('the project version (cache freshness)', () => {
  it('changes with every change of a slot a client can see, never with a lease heartbeat', async () => {
    const id = await project(2);
    const [a] = await claimAll(id, 'w2');
    const before = await findProjectVersion(db.sql, SCOPE, id);
    expect(await extendLeases(db.sql, 'w2', [a!.id], 120_000)).toBe(1);
    expect(await findProjectVersion(db.sql, SCOPE, id)).toBe(before);
    await markImagesSucceeded(db.sql, 'w2', [{ slot: a!, image: image(`${id}-v`), retries: 0 }], 10);
    const after = await findProjectVersion(db.sql, SCOPE, id);
    expect(after).not.toBe(before);
    // A change of a field only the image record shows (favorite) is a change too.
    await db.sql`UPDATE generated_images SET favorite = true WHERE id = ${a!.id}`;
    expect(await findProjectVersion(db.sql, SCOPE, id)).not.toBe(after);
  });
});

describe('folding', () => {
  it('a listing sees every change committed before it, by status too, with nothing folded for it beforehand', async () => {
    const owner = randomUUID();
    const id = await insertPendingProject(db.sql, owner, 2);
    await db.sql`UPDATE generated_images SET status = 'failed' WHERE content_creation_request_id = ${id}`;
    const list = (status: string | null) =>
      listProjectSummaries(db.sql, { scope: { ownerId: owner, unowned: false }, limit: 10, after: null, status });
    expect((await list('failed')).map((p) => [p.id, p.failed, p.queued])).toEqual([[id, 2, 0]]);
    expect(await list('queued')).toEqual([]);
    await db.sql`UPDATE generated_images SET status = 'succeeded' WHERE content_creation_request_id = ${id} AND image_index = 0`;
    expect((await list(null)).map((p) => [p.succeeded, p.failed])).toEqual([[1, 1]]);
    expect((await list('partial')).map((p) => p.id)).toEqual([id]);
  });

  it('many writers and folders at once: every change counted exactly once', async () => {
    const ids = await Promise.all(Array.from({ length: 4 }, () => project(25)));
    const claimed = (await claimQueuedSlots(db.sql, 'wf', 1000, 60_000)).filter((c) => ids.includes(c.projectId));
    expect(claimed).toHaveLength(100);
    const writes = claimed.map((slot, i) =>
      i % 3 === 0
        ? markImageFailed(db.sql, 'wf', slot, { error: 'e', code: 'x', provider: 'local', fullPrompt: null, providerRequestId: null, retries: 0 })
        : markImagesSucceeded(db.sql, 'wf', [{ slot, image: image(`${slot.id}-f`), retries: 0 }], 10),
    );
    const folds = Array.from({ length: 6 }, () => foldSlotChanges(db.sql));
    await Promise.all([...writes, ...folds]);
    expect(await disagreeing()).toEqual([]);
    const pending = await db.sql`SELECT 1 FROM project_slot_changes`;
    expect(pending.count).toBe(0);
  });

  it('folders at once, in small batches: no error, no change lost or counted twice', async () => {
    const ids = await Promise.all(Array.from({ length: 30 }, () => project(0)));
    const errors: unknown[] = [];
    for (let round = 0; round < 4; round++) {
      await db.sql`
        INSERT INTO project_slot_changes (project_id, total, queued, running, succeeded, failed)
        SELECT (${ids}::uuid[])[1 + floor(random() * ${ids.length})::int], 1, 1, 0, 0, 0 FROM generate_series(1, 1000)`;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (;;) {
            const folded = await db.sql<{ n: number }[]>`SELECT sceneworks_fold_slot_changes(37) AS n`.catch((err: unknown) => {
              errors.push(err);
              return [{ n: 1 }];
            });
            if (folded[0]!.n === 0) return;
          }
        }),
      );
    }
    expect(errors).toEqual([]);
    const [sum] = await db.sql<{ total: number }[]>`SELECT sum(slots_total)::int AS total FROM content_creation_requests WHERE id = ANY(${ids}::uuid[])`;
    expect(sum!.total).toBe(4000);
    // Those changes were made up (the projects have no slots): the projects go, not to disagree in the next test.
    await db.sql`DELETE FROM content_creation_requests WHERE id = ANY(${ids}::uuid[])`;
  });
});

describe('no writer of slots waits for its project', () => {
  it('the runner commits while a user action holds the project row', async () => {
    const id = await project(2);
    const [slot, other] = await claimAll(id, 'w3');
    // A user action (regenerate, restore, delete...) holds the project, then writes its slots.
    const user = await db.sql.reserve();
    try {
      await user`BEGIN`;
      await user`SELECT 1 FROM content_creation_requests WHERE id = ${id} FOR UPDATE`;
      // The runner's commit and failure complete meanwhile: they never lock the project row
      // (with the counters updated in place they waited here until the user's COMMIT).
      const commit = markImagesSucceeded(db.sql, 'w3', [{ slot: slot!, image: image(`${id}-l`), retries: 0 }], 10);
      const failure = markImageFailed(db.sql, 'w3', other!, { error: 'e', code: 'x', provider: 'local', fullPrompt: null, providerRequestId: null, retries: 0 });
      const outcome = await Promise.race([Promise.all([commit, failure]).then(() => 'done'), sleep(10_000).then(() => 'waited for the project')]);
      expect(outcome).toBe('done');
      expect((await commit).map((r) => r.committed)).toEqual([true]);
      await user`UPDATE generated_images SET prompt = 'edited' WHERE id = ${slot!.id}`;
      await user`COMMIT`;
    } finally {
      user.release();
    }
    expect(await disagreeing()).toEqual([]);
  });
});
