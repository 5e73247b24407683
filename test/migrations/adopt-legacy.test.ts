import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.ts';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';
import { createLogger } from '../../src/log.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// These tests start from an EMPTY database (not the migrated template the other files copy),
// load a legacy schema and its data into it, and let the project's migrations adopt it.

const FIXTURE = fileURLToPath(new URL('../fixtures/legacy-schema.sql', import.meta.url));
const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));
const LEGACY_TABLES = ['users', 'content_creation_requests', 'generated_images'] as const;
const log = createLogger('silent');

const ALICE_PROJECT = 'c1c1c1c1-0000-4000-8000-000000000001';
const BOB_PROJECT = 'c2c2c2c2-0000-4000-8000-000000000002';
const OWNER_PROJECT = 'c3c3c3c3-0000-4000-8000-000000000003';
const NO_URL_IMAGE = 'd3d3d3d3-0000-4000-8000-000000000002';

const migrationNames = async () =>
  (await readdir(MIGRATIONS_DIR))
    .filter((f) => f.endsWith('.sql'))
    .map((f) => f.slice(0, -'.sql'.length))
    .sort();

/** A client without the service's transforms: rows and JSON exactly as PostgreSQL has them. */
const rawClient = (url: string) => postgres(url, { max: 2, onnotice: () => {} });
type Raw = ReturnType<typeof rawClient>;

async function legacyDatabase(): Promise<{ db: TestDatabase; raw: Raw }> {
  const db = await createTestDatabase({ empty: true });
  const raw = rawClient(db.url);
  await raw.unsafe(await readFile(FIXTURE, 'utf8'));
  return { db, raw };
}

async function columnsOf(raw: Raw, table: string) {
  return raw<{ column_name: string; data_type: string; is_nullable: string }[]>`
    SELECT column_name, data_type, is_nullable FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name = ${table} ORDER BY ordinal_position`;
}

/** Every row of a table, as jsonb, keeping only the given columns. */
async function rowsOf(raw: Raw, table: string, columns: readonly string[]) {
  const rows = await raw<{ row: Record<string, unknown> }[]>`SELECT to_jsonb(t) AS row FROM ${raw(table)} t ORDER BY id`;
  return rows.map(({ row }) => Object.fromEntries(columns.map((c) => [c, row[c]])));
}

/** Unique indexes of generated_images on exactly the slot columns: name and whether deferrable. */
async function slotKeys(raw: Raw) {
  return raw<{ name: string; immediate: boolean }[]>`
    SELECT c.relname AS name, i.indimmediate AS immediate
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'generated_images'::regclass AND i.indisunique AND i.indnkeyatts = 3
      AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
           WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
          = ARRAY['content_creation_request_id', 'image_index', 'scene_index']
    ORDER BY c.relname`;
}

/** What a schema is made of: columns (type, null, default), indexes, constraints. */
async function catalog(raw: Raw) {
  const columns = await raw`
    SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
    WHERE table_schema = 'public' AND table_name <> 'sceneworks_migrations' ORDER BY table_name, ordinal_position`;
  const indexes = await raw`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`;
  const constraints = await raw`
    SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`;
  return { columns: [...columns], indexes: [...indexes], constraints: [...constraints] };
}

describe('adopting a legacy database', () => {
  let db: TestDatabase;
  let raw: Raw;
  let applied: string[];
  const before: Record<string, { columns: Awaited<ReturnType<typeof columnsOf>>; rows: Record<string, unknown>[] }> = {};

  beforeAll(async () => {
    ({ db, raw } = await legacyDatabase());
    for (const table of LEGACY_TABLES) {
      const columns = await columnsOf(raw, table);
      before[table] = { columns, rows: await rowsOf(raw, table, columns.map((c) => c.column_name)) };
    }
    applied = await migrate(db.url, log);
  });
  afterAll(async () => {
    await raw?.end();
    await db?.drop();
  });

  it('applies every migration', async () => {
    expect(applied).toEqual(await migrationNames());
  });

  it('keeps every legacy column, with its type and nullability, and every legacy row as it was', async () => {
    for (const table of LEGACY_TABLES) {
      const { columns, rows } = before[table]!;
      expect(rows.length).toBeGreaterThan(0);
      const after = await columnsOf(raw, table);
      expect(after.slice(0, columns.length)).toEqual(columns);
      expect(await rowsOf(raw, table, columns.map((c) => c.column_name))).toEqual(rows);
    }
    // Spot checks on what the comparison above covers, so a broken snapshot cannot pass silently.
    const [alice] = await raw`SELECT status, script, user_id, generated_output FROM content_creation_requests WHERE id = ${ALICE_PROJECT}`;
    expect(alice).toMatchObject({ status: 'completed', script: 'A castle on a hill. A dragon circles it.', user_id: 'a1a1a1a1-0000-4000-8000-000000000001' });
    expect(alice!.generated_output.scenes[1].imageUrls).toEqual(['https://cdn.legacy.test/c1/1-0.png', 'https://cdn.legacy.test/c1/1-1.png']);
    const [bob] = await raw`SELECT status, script, generated_output FROM content_creation_requests WHERE id = ${BOB_PROJECT}`;
    expect(bob).toEqual({ status: 'failed', script: null, generated_output: null });
    const urls = await raw`SELECT image_url FROM generated_images ORDER BY id`;
    expect(urls.map((r) => r.image_url)).toEqual([
      'https://cdn.legacy.test/c1/0-0.png',
      'https://cdn.legacy.test/c1/1-0.png',
      'https://cdn.legacy.test/c1/1-1.png',
      'https://cdn.legacy.test/c3/0-0.png',
      null,
    ]);
  });

  it('gives legacy rows the new columns with their defaults', async () => {
    const projects = await raw`SELECT settings, metadata, idempotency_key, request_hash, updated_at FROM content_creation_requests`;
    for (const p of projects) {
      expect(p).toMatchObject({ settings: {}, metadata: null, idempotency_key: null, request_hash: null });
      expect(p.updated_at).toBeInstanceOf(Date);
    }
    const images = await raw`SELECT status, attempts, generation, details, storage_key, prompt, locked_by FROM generated_images`;
    expect(images).toHaveLength(5);
    for (const image of images) {
      expect(image).toMatchObject({ attempts: 0, generation: 0, details: {}, storage_key: null, prompt: null, locked_by: null });
    }
  });

  it('makes legacy images succeeded, and the one without a URL failed, saying why', async () => {
    const rows = await raw`SELECT id, status, error FROM generated_images ORDER BY id`;
    expect(rows.filter((r) => r.id !== NO_URL_IMAGE)).toEqual(
      rows.filter((r) => r.id !== NO_URL_IMAGE).map((r) => ({ id: r.id, status: 'succeeded', error: null })),
    );
    expect(rows.find((r) => r.id === NO_URL_IMAGE)).toEqual({ id: NO_URL_IMAGE, status: 'failed', error: 'legacy row had no image URL' });
  });

  it('gives ids and timestamps defaults, keeps the legacy slot key, and adds the owner index', async () => {
    const [{ serverMajor }] = (await raw`SELECT current_setting('server_version_num')::int / 10000 AS "serverMajor"`) as unknown as [{ serverMajor: number }];
    const defaults = await raw<{ table_name: string; column_name: string; column_default: string | null }[]>`
      SELECT table_name, column_name, column_default FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name IN ('content_creation_requests', 'generated_images')
        AND column_name IN ('id', 'created_at', 'updated_at', 'status')
      ORDER BY table_name, column_name`;
    expect(defaults.map((d) => `${d.table_name}.${d.column_name} ${d.column_default}`).sort()).toEqual([
      'content_creation_requests.created_at now()',
      "content_creation_requests.status 'pending'::text",
      'content_creation_requests.id gen_random_uuid()',
      'content_creation_requests.updated_at now()',
      'generated_images.created_at now()',
      // Time-ordered (UUIDv7) on PostgreSQL 18+, where it exists; see migrations/*time-ordered*.
      `generated_images.id ${serverMajor >= 18 ? 'uuidv7()' : 'gen_random_uuid()'}`,
      "generated_images.status 'queued'::text",
      'generated_images.updated_at now()',
    ].sort());
    // The legacy key serves ON CONFLICT: no second one was added.
    expect(await slotKeys(raw)).toEqual([{ name: 'uq_generated_images_request_scene_image', immediate: true }]);
    const [owner] = await raw`SELECT indexdef FROM pg_indexes WHERE indexname = 'content_creation_requests_owner_created_idx'`;
    expect(owner?.indexdef).toMatch(/\(user_id, created_at DESC, id DESC\)/);
    const [check] = await raw`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'generated_images_status_check'`;
    expect(check?.def).toMatch(/queued.*running.*succeeded.*failed/);
  });

  it('applies nothing the second time', async () => {
    expect(await migrate(db.url, log)).toEqual([]);
    const [{ count }] = (await raw`SELECT count(*)::int AS count FROM sceneworks_migrations`) as unknown as [{ count: number }];
    expect(count).toBe((await migrationNames()).length);
  });

  describe('the service on the adopted database', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({}, { db });
    });
    afterAll(() => t?.close());

    it("reads a legacy project of the local owner: rows, the failed row's reason, and JSON-only images", async () => {
      const res = await t.call('GET', `/projects/${OWNER_PROJECT}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: OWNER_PROJECT, title: 'Seaside', status: 'partial', createdAt: '2024-03-03T12:00:00.000Z' });
      expect(res.body.progress).toEqual({ total: 2, queued: 0, running: 0, succeeded: 1, failed: 1 });
      const [waves, lighthouse, gull] = res.body.generatedOutput.scenes;
      expect(waves.imageUrls).toEqual(['https://cdn.legacy.test/c3/0-0.png']);
      expect(waves.images[0]).toMatchObject({ status: 'succeeded', url: 'https://cdn.legacy.test/c3/0-0.png' });
      expect(lighthouse.imageUrls).toEqual([null]);
      expect(lighthouse.images[0]).toMatchObject({ status: 'failed', error: 'legacy row had no image URL', url: null });
      expect(gull).toMatchObject({ prompt: 'a gull', imageUrls: ['https://cdn.legacy.test/c3/2-0.png'], images: [] });
    });

    it('hides the projects of other legacy users', async () => {
      expect((await t.call('GET', `/projects/${ALICE_PROJECT}`)).status).toBe(404);
      expect((await t.call('GET', `/projects/${BOB_PROJECT}`)).status).toBe(404);
    });

    it('generate requeues the legacy slot that had no URL in place, and keeps every legacy image', async () => {
      expect((await t.call('POST', `/projects/${OWNER_PROJECT}/generate`)).status).toBe(202);
      const done = await t.waitForProject(OWNER_PROJECT);
      const [waves, lighthouse, gull] = done.generatedOutput.scenes;
      expect(waves.imageUrls).toEqual(['https://cdn.legacy.test/c3/0-0.png']);
      expect(gull.imageUrls).toEqual(['https://cdn.legacy.test/c3/2-0.png']);
      expect(gull.images[0]).toMatchObject({ status: 'succeeded', url: 'https://cdn.legacy.test/c3/2-0.png' });
      expect(lighthouse.images.map((i: { id: string }) => i.id)).toEqual([NO_URL_IMAGE]);
      const [row] = await raw`SELECT generation, attempts FROM generated_images WHERE id = ${NO_URL_IMAGE}`;
      expect(row).toMatchObject({ generation: 1 });
      expect(row!.attempts).toBeGreaterThan(0);
    });

    // Legacy rows have no prompt of their own: a requeued one takes its scene's prompt.
    it('the requeued legacy slot gets its image', async () => {
      const done = await t.waitForProject(OWNER_PROJECT);
      expect(done.generatedOutput.scenes[1].images[0]).toMatchObject({ status: 'succeeded', error: null });
      expect(done.generatedOutput.scenes[1].imageUrls[0]).toMatch(/^http:\/\/sceneworks\.test\/files\/.+\.png$/);
      expect(done.status).toBe('completed');
    });

    it('creates projects: ids, timestamps and legacy columns come from their defaults', async () => {
      // user_id REFERENCES users (id): this works only because the fixture has a users row for
      // LOCAL_OWNER_ID. Without one, every POST /projects fails that foreign key.
      const res = await t.call('POST', '/projects', { title: 'new', scenes: [{ prompt: 'a fox' }, { prompt: 'a hen' }], imagesPerScene: 2 });
      expect(res.status).toBe(202);
      const done = await t.waitForProject(res.body.id);
      expect(done.status).toBe('completed');
      expect(done.progress).toEqual({ total: 4, queued: 0, running: 0, succeeded: 4, failed: 0 });
      const [project] = await raw`SELECT user_id, status, script, created_at FROM content_creation_requests WHERE id = ${res.body.id}`;
      expect(project).toMatchObject({ user_id: LOCAL_OWNER_ID, status: 'pending', script: null });
      expect(project!.created_at).toBeInstanceOf(Date);
      const images = await raw`SELECT id, created_at, updated_at FROM generated_images WHERE content_creation_request_id = ${res.body.id}`;
      expect(images).toHaveLength(4);
      for (const image of images) expect(image.created_at).toBeInstanceOf(Date);

      const list = await t.call('GET', '/projects');
      expect(list.status).toBe(200);
      expect(list.body.items.map((p: { id: string }) => p.id)).toEqual([res.body.id, OWNER_PROJECT]);
    });
  });
});

// OWNER_ID (src/config.ts) makes single-user mode act as an existing legacy user.
describe('acting as a legacy user (OWNER_ID)', () => {
  let db: TestDatabase;
  let raw: Raw;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    ({ db, raw } = await legacyDatabase());
    await migrate(db.url, log);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await raw?.end();
    await db?.drop();
  });
  const actingAs = async (owner: string) => {
    const app = await startTestApp({ OWNER_ID: owner }, { db, runner: false });
    apps.push(app);
    return app;
  };

  it('reads a legacy project whose generated_output is NULL', async () => {
    const t = await actingAs('b2b2b2b2-0000-4000-8000-000000000002');
    const res = await t.call('GET', `/projects/${BOB_PROJECT}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: BOB_PROJECT, title: null, createdAt: '2024-03-02T11:00:00.000Z', generatedOutput: { scenes: [] } });
  });

  // One of alice's legacy image rows has updated_at NULL (the legacy column is nullable and
  // the migration does not rewrite legacy values): the read path must cope.
  it('reads a legacy project whose image rows have a NULL updated_at', async () => {
    const t = await actingAs('a1a1a1a1-0000-4000-8000-000000000001');
    const res = await t.call('GET', `/projects/${ALICE_PROJECT}`);
    expect(res.status).toBe(200);
    expect(res.body.progress).toEqual({ total: 3, queued: 0, running: 0, succeeded: 3, failed: 0 });
  });
});

describe('adopting legacy variants', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  async function legacy(change: string) {
    const { db, raw } = await legacyDatabase();
    cleanups.push(async () => {
      await raw.end();
      await db.drop();
    });
    if (change) await raw.unsafe(change);
    return { db, raw };
  }

  it('adds the slot key when the legacy table has none', async () => {
    const { db, raw } = await legacy('ALTER TABLE generated_images DROP CONSTRAINT uq_generated_images_request_scene_image');
    await migrate(db.url, log);
    expect(await slotKeys(raw)).toEqual([{ name: 'generated_images_slot_key', immediate: true }]);
  });

  it('adds the slot key when the legacy one is deferrable, which ON CONFLICT cannot use', async () => {
    const { db, raw } = await legacy(`
      ALTER TABLE generated_images DROP CONSTRAINT uq_generated_images_request_scene_image;
      ALTER TABLE generated_images ADD CONSTRAINT uq_generated_images_request_scene_image
        UNIQUE (content_creation_request_id, scene_index, image_index) DEFERRABLE INITIALLY DEFERRED`);
    await migrate(db.url, log);
    expect(await slotKeys(raw)).toEqual([
      { name: 'generated_images_slot_key', immediate: true },
      { name: 'uq_generated_images_request_scene_image', immediate: false },
    ]);
  });

  it('refuses to build the slot key over duplicate rows, deletes nothing, and adopts once they are resolved', async () => {
    const duplicate = 'e0e0e0e0-0000-4000-8000-000000000001';
    const { db, raw } = await legacy(`
      ALTER TABLE generated_images DROP CONSTRAINT uq_generated_images_request_scene_image;
      INSERT INTO generated_images (id, content_creation_request_id, scene_index, image_url, image_index, created_at)
      VALUES ('${duplicate}', '${ALICE_PROJECT}', 0, 'https://cdn.legacy.test/c1/0-0-again.png', 0, now())`);
    await expect(migrate(db.url, log)).rejects.toThrow(
      `cannot adopt generated_images: 1 slot(s) have more than one row, e.g. project ${ALICE_PROJECT}, scene 0, image 0 has 2 rows`,
    );
    const [{ count }] = (await raw`SELECT count(*)::int AS count FROM generated_images`) as unknown as [{ count: number }];
    expect(count).toBe(6);
    expect(await slotKeys(raw)).toEqual([]);

    await raw`DELETE FROM generated_images WHERE id = ${duplicate}`;
    expect(await migrate(db.url, log)).toEqual((await migrationNames()).filter((name) => name >= '1763856000000'));
    expect(await slotKeys(raw)).toEqual([{ name: 'generated_images_slot_key', immediate: true }]);
  });

  it('creates generated_images when the legacy database never had it', async () => {
    const { db, raw } = await legacy('DROP TABLE generated_images');
    expect(await migrate(db.url, log)).toEqual(await migrationNames());
    expect(await slotKeys(raw)).toEqual([{ name: 'generated_images_slot_key', immediate: true }]);
    const [{ count }] = (await raw`SELECT count(*)::int AS count FROM content_creation_requests`) as unknown as [{ count: number }];
    expect(count).toBe(3);
  });
});

describe('migrating an empty database', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  async function empty() {
    const db = await createTestDatabase({ empty: true });
    const raw = rawClient(db.url);
    cleanups.push(async () => {
      await raw.end();
      await db.drop();
    });
    return { db, raw };
  }

  it('the adoption migration changes nothing on a schema the earlier migrations created', async () => {
    const { db, raw } = await empty();
    const names = await migrationNames();
    const adoption = names.indexOf('1763856000000_adopt-legacy');
    const upTo = (count: number) =>
      runner({ databaseUrl: db.url, dir: MIGRATIONS_DIR, direction: 'up', migrationsTable: 'sceneworks_migrations', count, log: () => {} });
    await upTo(adoption);
    const beforeAdoption = await catalog(raw);
    expect((await upTo(1)).map((m) => m.name)).toEqual(['1763856000000_adopt-legacy']);
    expect(await catalog(raw)).toEqual(beforeAdoption);
  });

  it('two migrations started at once both succeed and apply each migration once (advisory lock)', async () => {
    const { db, raw } = await empty();
    const [a, b] = await Promise.all([migrate(db.url, log), migrate(db.url, log)]);
    const names = await migrationNames();
    expect([a, b].map((x) => x.length).sort()).toEqual([0, names.length]);
    expect([...a, ...b]).toEqual(names);
    const rows = await raw`SELECT name FROM sceneworks_migrations ORDER BY id`;
    expect(rows.map((r) => r.name)).toEqual(names);
  });
});
