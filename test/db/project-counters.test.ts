import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertQueuedSlots } from '../../src/db/images.ts';
import { findProjectVersion, insertProject } from '../../src/db/projects.ts';
import { claimQueuedSlots, extendLeases, markImageFailed, markImagesSucceeded, type ClaimedSlot } from '../../src/db/queue.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The counts, status and images_version on each project row (migration 1764979200000) must
 * equal what its slots say after any statement, and the lock order that keeps the counting
 * triggers from deadlocking must hold.
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

async function project(slots: number): Promise<string> {
  const id = randomUUID();
  await insertProject(db.sql, {
    id,
    ownerId: OWNER,
    title: null,
    generatedOutput: { scenes: [{ prompt: 'p' }] },
    settings: { imagesPerScene: slots, aspectRatio: '1:1' },
    metadata: null,
    idempotencyKey: null,
    requestHash: null,
  });
  const rows = Array.from({ length: slots }, (_, imageIndex) => ({ sceneIndex: 1, imageIndex, prompt: 'p' }));
  await insertQueuedSlots(db.sql, id, '1:1', rows, { ownerId: OWNER, spacing: 1 });
  return id;
}

async function claimAll(projectId: string, worker: string): Promise<ClaimedSlot[]> {
  const claimed = await claimQueuedSlots(db.sql, worker, 1000, 60_000);
  return claimed.filter((c) => c.projectId === projectId);
}

const image = (tag: string) => ({
  prompt: 'p',
  url: `http://x/${tag}.png`,
  storageKey: `k/${tag}.png`,
  fullPrompt: 'p',
  provider: 'local',
  model: null,
  seed: 1,
  width: 1,
  height: 1,
  mimeType: 'image/png',
  bytes: 1,
  sha256: 'x',
  revisedPrompt: null,
  providerRequestId: null,
});

/** Projects whose row disagrees with their slots: none, whatever ran before. */
async function disagreeing(): Promise<unknown[]> {
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
    const status = async () => ((await db.sql`SELECT status FROM content_creation_requests WHERE id = ${id}`) as unknown as [{ status: string }])[0].status;
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

describe('lock order', () => {
  it('a commit waits for a project a user action holds, instead of deadlocking with it', async () => {
    const id = await project(1);
    const [slot] = await claimAll(id, 'w3');
    // A user action (regenerate, restore, delete...) holds the project, then writes its slots.
    const user = await db.sql.reserve();
    try {
      await user`BEGIN`;
      await user`SELECT 1 FROM content_creation_requests WHERE id = ${id} FOR UPDATE`;
      // The runner commits the slot meanwhile: it must wait for the project before touching the slot.
      const commit = markImagesSucceeded(db.sql, 'w3', [{ slot: slot!, image: image(`${id}-l`), retries: 0 }], 10);
      await sleep(300);
      // Without the runner taking the project first, it would hold the slot and wait here for
      // the project: this write would wait for the slot, and PostgreSQL would abort one of them.
      await user`UPDATE generated_images SET prompt = 'edited' WHERE id = ${slot!.id}`;
      await user`COMMIT`;
      expect((await commit).map((r) => r.committed)).toEqual([true]);
    } finally {
      user.release();
    }
    expect(await disagreeing()).toEqual([]);
  });
});
