import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listImageRowVersions, listWatchedImages } from '../../src/db/events.ts';
import { listProjectImages } from '../../src/db/images.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const [project, other] = [randomUUID(), randomUUID()];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql`INSERT INTO content_creation_requests (id, user_id) VALUES (${project}, ${randomUUID()}), (${other}, ${randomUUID()})`;
  // Every kind of row a project shows: queued, running, failed, succeeded, stale (made from an
  // older prompt), a legacy URL; inserted out of slot order.
  await db.sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, prompt, image_prompt, image_url, storage_key,
                                  width, height, mime_type, bytes, provider, model, seed, attempts, error)
    VALUES (${project}, 2, 1, 'succeeded', 'new prompt', 'old prompt', 'http://x.test/a.png', 'p/a.png', 64, 32, 'image/png', 100, 'local', 'm', 7, 1, NULL),
           (${project}, 1, 0, 'queued', 'p', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL),
           (${project}, 1, 1, 'running', 'p', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'local', NULL, NULL, 1, NULL),
           (${project}, 2, 0, 'failed', 'p', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'local', NULL, NULL, 3, 'boom'),
           (${project}, 3, 0, 'succeeded', NULL, NULL, 'https://legacy.test/x.jpg', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL),
           (${other}, 1, 0, 'queued', 'p', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL)`;
});
afterAll(() => db?.drop());

describe('the reads behind event streams', () => {
  it('read images exactly as listProjectImages does, all of them or only the ids asked, in slot order', async () => {
    const expected = await listProjectImages(db.sql, project);
    expect(expected.some((i) => i.stale)).toBe(true);
    const all = await listWatchedImages(db.sql, project);
    expect(all.map((r) => r.image)).toEqual(expected);

    const [otherImage] = await listProjectImages(db.sql, other);
    const asked = [expected[4]!.id, expected[1]!.id, randomUUID(), otherImage!.id];
    const some = await listWatchedImages(db.sql, project, asked);
    expect(some.map((r) => r.image)).toEqual([expected[1], expected[4]]);
    expect(await listWatchedImages(db.sql, project, [])).toEqual([]);
  });

  it('give every row a version that moves with every write to it, and only then', async () => {
    const before = await listImageRowVersions(db.sql, project);
    const all = await listWatchedImages(db.sql, project);
    expect(new Map(before.map((v) => [v.id, v.rowVersion]))).toEqual(new Map(all.map((r) => [r.image.id, r.rowVersion])));

    const running = all.find((r) => r.image.status === 'running')!.image.id;
    await db.sql`UPDATE generated_images SET locked_until = now() WHERE id = ${running}`; // a heartbeat: not notified, still a write
    await db.sql`UPDATE generated_images SET locked_until = now() WHERE content_creation_request_id = ${other}`;
    const after = await listImageRowVersions(db.sql, project);
    const moved = after.filter((v) => before.find((b) => b.id === v.id)!.rowVersion !== v.rowVersion).map((v) => v.id);
    expect(moved).toEqual([running]);
  });
});
