import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/db/database.ts';
import { listGallery } from '../../src/db/gallery.ts';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';
import { startFakeJwks, supabaseLegacyKey, supabaseUserClaims, type FakeJwks } from '../fakes/jwks.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * GET /images, GET /images/:id, PATCH /images/:id: the gallery, on rows written straight into
 * generated_images (every status, ties in gallery time, owned and unowned), with the runner
 * off so nothing changes under the assertions; then owner isolation with AUTH=jwt on images
 * the service generated itself.
 */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({}, { runner: false });
});
afterAll(() => t.close());

type Status = 'queued' | 'running' | 'succeeded' | 'failed';
interface Seeded {
  id: string;
  projectId: string;
  status: Status;
  provider: string;
  favorite: boolean;
  galleryAt: string;
  /** What is searched: the image's prompt, full prompt and revised prompt. */
  text: string;
}

const BASE = Date.parse('2026-03-01T12:00:00.000Z');
/** ISO with microseconds (6 decimals): these strings sort as the instants do. */
const at = (seconds: number) => new Date(BASE + seconds * 1000).toISOString().replace('Z', '000Z');

async function insertProject(sql: TestApp['db']['sql'], owner: string | null, title: string, style: string | null = null) {
  const id = randomUUID();
  await sql`
    INSERT INTO content_creation_requests (id, user_id, title, generated_output, settings)
    VALUES (${id}, ${owner}, ${title}, ${sql.json({ scenes: [] })}, ${sql.json({ aspectRatio: '16:9', style, imagesPerScene: 1 })})`;
  return id;
}

let slot = 0;
async function insertImage(sql: TestApp['db']['sql'], projectId: string, owner: string | null, columns: Record<string, unknown>): Promise<string> {
  const row = {
    contentCreationRequestId: projectId,
    sceneIndex: 1 + Math.floor(slot / 8),
    imageIndex: slot++ % 8,
    ownerId: owner,
    status: 'succeeded',
    imageUrl: 'https://cdn.test/image.png',
    ...columns,
  };
  const [inserted] = await sql<{ id: string }[]>`INSERT INTO generated_images ${sql(row as never)} RETURNING id`;
  return inserted!.id;
}

// The owner's gallery (AUTH=none: OWNER_ID, unowned legacy rows included): two projects of
// the owner, one unowned, one of someone else that never shows.
const PROMPTS = [
  'A lighthouse on a cliff at dawn',
  'The red fox in the snowy forest',
  'A cat sleeping on a windowsill',
  'Golden hour over the harbor',
  'A dog and a cat playing in the garden',
  'Golden fields at the hour of noon',
];
const seeded: Seeded[] = [];
let owned1: string;
let owned2: string;
let unowned: string;
let foreign: string;
let foreignImage: string;

beforeAll(async () => {
  const sql = t.db.sql;
  owned1 = await insertProject(sql, LOCAL_OWNER_ID, 'Harbor', 'watercolor');
  owned2 = await insertProject(sql, LOCAL_OWNER_ID, 'Forest');
  unowned = await insertProject(sql, null, 'Legacy');
  foreign = await insertProject(sql, randomUUID(), 'Not yours');
  const projects = [owned1, owned2, unowned];
  const statuses: Status[] = ['succeeded', 'succeeded', 'failed', 'succeeded', 'queued', 'succeeded', 'running'];
  const providers = ['local', 'openai', 'stability', 'local', 'openai'];
  for (let k = 0; k < 36; k++) {
    const projectId = projects[k % 3]!;
    const owner = projectId === unowned ? null : LOCAL_OWNER_ID;
    // Groups of three share one gallery time to the microsecond: ties across projects and owners.
    const galleryAt = at(Math.floor(k / 3) * 60);
    const prompt = PROMPTS[k % PROMPTS.length]!;
    const fullPrompt = k % 4 === 0 ? `${prompt}, watercolor style` : prompt;
    const revisedPrompt = k % 9 === 0 ? `${prompt} with soft bokeh` : null;
    const image = {
      status: statuses[k % statuses.length]!,
      provider: providers[k % providers.length]!,
      favorite: k % 5 === 0,
      galleryAt,
    };
    const id = await insertImage(sql, projectId, owner, {
      ...image,
      prompt,
      imagePrompt: prompt,
      fullPrompt,
      revisedPrompt,
      imageUrl: image.status === 'succeeded' ? `https://cdn.test/${k}.png` : null,
    });
    seeded.push({ id, projectId, ...image, text: [prompt, fullPrompt, revisedPrompt ?? ''].join(' ') });
  }
  // A stale image: made from "an old submarine", its slot's prompt since edited to "a new zeppelin".
  const stale = { status: 'succeeded' as const, provider: 'local', favorite: false, galleryAt: at(3600) };
  const staleId = await insertImage(sql, owned2, LOCAL_OWNER_ID, { ...stale, prompt: 'a new zeppelin', imagePrompt: 'an old submarine', fullPrompt: 'an old submarine' });
  seeded.push({ id: staleId, projectId: owned2, ...stale, text: 'an old submarine an old submarine' });
  foreignImage = await insertImage(sql, foreign, (await sql<{ userId: string }[]>`SELECT user_id FROM content_creation_requests WHERE id = ${foreign}`)[0]!.userId, {
    prompt: 'A lighthouse on a cliff at dawn',
    fullPrompt: 'A lighthouse on a cliff at dawn',
    provider: 'local',
    galleryAt: at(30),
  });
});

const newestFirst = (a: Seeded, b: Seeded) => (a.galleryAt === b.galleryAt ? (a.id < b.id ? 1 : -1) : a.galleryAt < b.galleryAt ? 1 : -1);
const words = (s: Seeded) => new Set(s.text.toLowerCase().split(/[^a-z]+/).filter(Boolean));
const has = (word: string) => (s: Seeded) => words(s).has(word);
const succeeded = (s: Seeded) => s.status === 'succeeded';

/** Every page of GET /images with these parameters, following nextCursor; the ids in order. */
async function pageThrough(query: Record<string, string>, limit = 4): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 100; pages++) {
    const params = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
    const res = await t.call('GET', `/images?${params}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    ids.push(...res.body.items.map((i: any) => i.id));
    cursor = res.body.nextCursor;
    if (cursor === null) return ids;
    expect(res.body.items).toHaveLength(limit);
  }
  throw new Error('more than 100 pages');
}

const expected = (keep: (s: Seeded) => boolean) => seeded.filter(keep).sort(newestFirst).map((s) => s.id);

describe('GET /images: the gallery', () => {
  it('newest first; paging by cursor visits every image exactly once, ties in gallery time and owned + unowned merged', async () => {
    const all = await pageThrough({}, 4);
    expect(all).toEqual(expected(succeeded));
    expect(new Set(all).size).toBe(all.length);
    expect(all).not.toContain(foreignImage);
    // Ties: several images share a gallery time, and the unowned project's are among them.
    expect(seeded.filter(succeeded).some((s) => s.projectId === unowned)).toBe(true);
    for (const limit of [1, 2, 3, 5, 100]) expect(await pageThrough({}, limit), `limit ${limit}`).toEqual(all);
  });

  it('each item is the full record; the last page has no cursor; limit defaults to 20', async () => {
    const res = await t.call('GET', '/images');
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(20);
    expect(typeof res.body.nextCursor).toBe('string');
    const first = res.body.items[0];
    const source = seeded.find((s) => s.id === first.id)!;
    expect(first).toMatchObject({ projectId: source.projectId, status: 'succeeded', provider: source.provider, favorite: source.favorite });
    expect(Object.keys(first).sort()).toEqual(
      ['aspectRatio', 'attempts', 'bytes', 'costUsd', 'createdAt', 'error', 'favorite', 'fullPrompt', 'height', 'id', 'imageIndex', 'mimeType', 'model', 'projectId', 'projectTitle', 'prompt', 'provider', 'providerRequestId', 'revisedPrompt', 'sceneIndex', 'seed', 'sha256', 'stale', 'status', 'style', 'timings', 'updatedAt', 'url', 'version', 'width'].sort(),
    );
  });

  it('status defaults to succeeded; each status on its own', async () => {
    for (const status of ['succeeded', 'failed', 'queued', 'running'] as const) {
      expect(await pageThrough({ status }), status).toEqual(expected((s) => s.status === status));
    }
  });

  it('each filter, and filters combined, page through exactly the images that match', async () => {
    const cases: [Record<string, string>, (s: Seeded) => boolean][] = [
      [{ favorite: 'true' }, (s) => succeeded(s) && s.favorite],
      [{ favorite: 'false' }, (s) => succeeded(s) && !s.favorite],
      [{ provider: 'openai' }, (s) => succeeded(s) && s.provider === 'openai'],
      [{ provider: 'nobody' }, () => false],
      [{ projectId: owned1 }, (s) => succeeded(s) && s.projectId === owned1],
      [{ projectId: unowned }, (s) => succeeded(s) && s.projectId === unowned],
      [{ projectId: foreign }, () => false],
      // Half-open: at or after createdAfter, before createdBefore; the bounds are gallery times of images.
      [{ createdAfter: at(180) }, (s) => succeeded(s) && s.galleryAt >= at(180)],
      [{ createdBefore: at(360) }, (s) => succeeded(s) && s.galleryAt < at(360)],
      [{ createdAfter: at(180), createdBefore: at(360) }, (s) => succeeded(s) && s.galleryAt >= at(180) && s.galleryAt < at(360)],
      [{ createdAfter: '2026-03-01T13:03:00+01:00' }, (s) => succeeded(s) && s.galleryAt >= at(180)],
      [{ favorite: 'true', provider: 'local' }, (s) => succeeded(s) && s.favorite && s.provider === 'local'],
      [{ projectId: owned2, favorite: 'false' }, (s) => succeeded(s) && s.projectId === owned2 && !s.favorite],
      [{ projectId: owned1, provider: 'stability' }, (s) => succeeded(s) && s.projectId === owned1 && s.provider === 'stability'],
      [{ status: 'failed', provider: 'stability' }, (s) => s.status === 'failed' && s.provider === 'stability'],
      [{ provider: 'openai', createdAfter: at(120), createdBefore: at(600) }, (s) => succeeded(s) && s.provider === 'openai' && s.galleryAt >= at(120) && s.galleryAt < at(600)],
      [{ favorite: 'true', projectId: unowned, status: 'succeeded' }, (s) => succeeded(s) && s.favorite && s.projectId === unowned],
      [{ q: 'cat', favorite: 'false', provider: 'local' }, (s) => succeeded(s) && has('cat')(s) && !s.favorite && s.provider === 'local'],
      [{ q: 'golden', projectId: owned1 }, (s) => succeeded(s) && has('golden')(s) && s.projectId === owned1],
    ];
    for (const [query, keep] of cases) {
      const want = expected(keep);
      expect(await pageThrough(query, 2), JSON.stringify(query)).toEqual(want);
    }
    // The cases are not vacuous: most of them select some images and leave others out.
    const sizes = cases.map(([, keep]) => expected(keep).length);
    expect(sizes.filter((n) => n > 0 && n < expected(succeeded).length).length).toBeGreaterThanOrEqual(14);
  });
});

describe('GET /images?q=: full-text search', () => {
  const search = (q: string, extra: Record<string, string> = {}) => pageThrough({ q, ...extra }, 3);

  it('a word, in any case, in the prompt, the full prompt or the revised prompt', async () => {
    expect(await search('lighthouse')).toEqual(expected((s) => succeeded(s) && has('lighthouse')(s)));
    expect(await search('LightHouse')).toEqual(await search('lighthouse'));
    expect((await search('lighthouse')).length).toBeGreaterThan(0);
    // Only in the full prompt; only in the revised prompt.
    const watercolor = expected((s) => succeeded(s) && has('watercolor')(s));
    expect(watercolor.length).toBeGreaterThan(0);
    expect(await search('watercolor')).toEqual(watercolor);
    const bokeh = expected((s) => succeeded(s) && has('bokeh')(s));
    expect(bokeh.length).toBeGreaterThan(0);
    expect(await search('bokeh')).toEqual(bokeh);
  });

  it("the image's own prompt is searched, not the slot's edited one", async () => {
    const stale = seeded.find((s) => s.text.includes('submarine'))!;
    expect(await search('submarine')).toEqual([stale.id]);
    expect(await search('zeppelin')).toEqual([]);
  });

  it('websearch syntax: words are all required, "a phrase" in order, -word excluded, or', async () => {
    const golden = expected((s) => succeeded(s) && has('golden')(s) && has('hour')(s));
    const phrase = expected((s) => succeeded(s) && s.text.toLowerCase().includes('golden hour'));
    expect(phrase.length).toBeGreaterThan(0);
    expect(golden.length).toBeGreaterThan(phrase.length);
    expect(await search('golden hour ')).toEqual(golden);
    expect(await search('"golden hour"')).toEqual(phrase);
    expect(await search('cat -dog')).toEqual(expected((s) => succeeded(s) && has('cat')(s) && !has('dog')(s)));
    expect((await search('cat -dog')).length).toBeGreaterThan(0);
    expect(await search('fox or lighthouse')).toEqual(expected((s) => succeeded(s) && (has('fox')(s) || has('lighthouse')(s))));
    expect(await search('fox lighthouse')).toEqual([]);
  });

  it('the last word is a prefix while it is being typed (no space after it)', async () => {
    const lighthouse = await search('lighthouse');
    expect(await search('lightho')).toEqual(lighthouse);
    expect(await search('l')).toEqual(expected((s) => succeeded(s) && [...words(s)].some((w) => w.startsWith('l'))));
    expect(await search('cliff at da')).toEqual(expected((s) => succeeded(s) && has('cliff')(s) && has('at')(s) && [...words(s)].some((w) => w.startsWith('da'))));
    expect(await search('cat -do')).toEqual(expected((s) => succeeded(s) && has('cat')(s) && ![...words(s)].some((w) => w.startsWith('do'))));
    // A space or a closing quote ends the word: then it must match whole.
    expect(await search('lightho ')).toEqual([]);
    expect(await search('"lightho"')).toEqual([]);
    // Only the last word.
    expect(await search('lightho cliff')).toEqual([]);
  });

  it('an empty q is no search; nothing searchable (punctuation, a lone quote or dash) finds nothing', async () => {
    expect(await pageThrough({ q: '' })).toEqual(expected(succeeded));
    expect(await pageThrough({ q: '   ' })).toEqual(expected(succeeded));
    for (const q of ['!!!', '"', '-', '""', '&|!', '()']) expect(await search(q), q).toEqual([]);
  });

  it('any text up to 200 characters is a 200, never a 5xx; more is a 400', async () => {
    const weird = ["it's", "'", '\\', '"unclosed phrase', '-"', '((', 'a:*', 'a & b', '<->', 'x | !y', 'or', 'OR or', '-or', '\t', '🦊 fox', 'é', '%', '_', ':', '*', '\'\'\'', 'a'.repeat(200), 'ab '.repeat(66)];
    for (const q of weird) {
      const res = await t.call('GET', `/images?q=${encodeURIComponent(q)}`);
      expect(res.status, q).toBe(200);
      expect(Array.isArray(res.body.items)).toBe(true);
    }
    const pieces = fc.oneof(
      fc.constantFrom('"', '-', ' ', 'or', 'OR', '!', '&', '|', '(', ')', ':', '*', "'", '\\', '<->', 'lightho', 'cat', 'é', '🦊', '\t', ',', '.', '\u200b'),
      fc.string({ maxLength: 6 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(pieces, { maxLength: 40 }).map((p) => p.join('').slice(0, 200)), async (q) => {
        const res = await t.call('GET', `/images?q=${encodeURIComponent(q)}`);
        expect(res.status, JSON.stringify(q)).toBe(200);
      }),
      { numRuns: 150 },
    );
    expect((await t.call('GET', `/images?q=${'a'.repeat(201)}`)).status).toBe(400);
    const nul = await t.call('GET', '/images?q=a%00b');
    expect(nul.status).toBe(400);
    expect(nul.body.error.code).toBe('VALIDATION_FAILED');
  });

  it('each search is planned for its own words, never with a generic plan', async () => {
    // One connection: the prepared statements looked at are the ones the searches made.
    const sql = connect(t.db.url, 1);
    try {
      for (let i = 0; i < 12; i++) await listGallery(sql, { ownerId: LOCAL_OWNER_ID, unowned: true }, { limit: 5, before: null, search: i % 2 ? 'lighthouse' : 'cat' });
      const plans = await sql<{ genericPlans: number; customPlans: number }[]>`
        SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%@@%' AND statement NOT LIKE '%pg_prepared_statements%'`;
      // Each statement of a search (ordered scans, the index when the words are rare), each planned every time.
      expect(plans.length).toBeGreaterThan(0);
      for (const plan of plans) expect(plan.genericPlans).toBe(0);
      expect(plans.reduce((n, p) => n + p.customPlans, 0)).toBeGreaterThanOrEqual(12);
    } finally {
      await sql.end();
    }
  });
});

describe('GET /images: refused requests', () => {
  it('a cursor this API did not make is a 400 VALIDATION_FAILED, never a 500', async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const id = randomUUID();
    const bad = [
      'garbage',
      '%%%',
      encode('not an array'),
      encode([]),
      encode(['2026-03-01 12:00:00+00']),
      encode(['2026-03-01 12:00:00+00', 'not-a-uuid']),
      encode([12345, id]),
      encode(['2026-03-01T12:00:00Z', id]),
      encode(['2026-02-30 12:00:00+00', id]),
      encode(['2026-03-01 25:00:00+00', id]),
      encode(['0000-01-01 00:00:00+00', id]),
      encode(['2026-03-01 12:00:00.1234567+00', id]),
      encode(["2026-03-01 12:00:00+00'; DROP TABLE generated_images; --", id]),
    ];
    for (const cursor of bad) {
      const res = await t.call('GET', `/images?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details[0].path).toEqual(['cursor']);
    }
    // A well-formed position is a position, whether or not an image sits there.
    const ok = await t.call('GET', `/images?cursor=${encode(['2026-03-01 12:03:00.5+00', id])}`);
    expect(ok.status).toBe(200);
    expect(ok.body.items.map((i: any) => i.id)).toEqual(expected((s) => succeeded(s) && s.galleryAt < at(180.5)).slice(0, 20));
  });

  it('unknown, repeated or malformed query parameters are a 400 naming the parameter', async () => {
    const cases: [string, string][] = [
      ['sort=oldest', 'sort'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['status=done', 'status'],
      ['status=succeeded&status=failed', 'status'],
      ['favorite=yes', 'favorite'],
      ['projectId=42', 'projectId'],
      ['provider=', 'provider'],
      [`provider=${'p'.repeat(101)}`, 'provider'],
      ['createdAfter=yesterday', 'createdAfter'],
      ['createdAfter=2026-03-01', 'createdAfter'],
      ['createdAfter=2026-03-01T12:00:00', 'createdAfter'],
      ['createdBefore=2026-02-30T00:00:00Z', 'createdBefore'],
      ['createdBefore=0000-06-01T00:00:00Z', 'createdBefore'],
    ];
    for (const [query, param] of cases) {
      const res = await t.call('GET', `/images?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code, query).toBe('VALIDATION_FAILED');
      expect(JSON.stringify(res.body.error.details), query).toContain(param);
    }
  });
});

describe('GET /images/:id and PATCH /images/:id', () => {
  let full: string;
  let failed: string;
  beforeAll(async () => {
    const sql = t.db.sql;
    full = await insertImage(sql, owned1, LOCAL_OWNER_ID, {
      sceneIndex: 3,
      imageIndex: 1,
      imageUrl: 'https://cdn.test/full.png',
      width: 1344,
      height: 768,
      mimeType: 'image/png',
      bytes: 123456,
      sha256: 'ab'.repeat(32),
      provider: 'openai',
      model: 'gpt-image-1',
      seed: 42,
      attempts: 2,
      prompt: 'A lighthouse, edited',
      imagePrompt: 'A lighthouse on a cliff at dawn',
      fullPrompt: 'A lighthouse on a cliff at dawn, watercolor style',
      revisedPrompt: 'A tall white lighthouse on a rocky cliff at dawn',
      aspectRatio: '3:2',
      providerRequestId: 'req_abc123',
      version: 3,
      versionsMade: 3,
      costUsd: '0.040000',
      queuedAt: '2026-03-01T10:00:00.000Z',
      startedAt: '2026-03-01T10:00:01.250Z',
      finishedAt: '2026-03-01T10:00:09.500Z',
      createdAt: '2026-03-01T09:59:59.000Z',
      updatedAt: '2026-03-01T10:00:09.500Z',
      galleryAt: '2026-03-01T10:00:09.500Z',
    });
    failed = await insertImage(sql, owned2, LOCAL_OWNER_ID, {
      sceneIndex: 7,
      imageIndex: 0,
      status: 'failed',
      imageUrl: null,
      provider: 'stability',
      prompt: 'A storm',
      attempts: 3,
      error: 'provider error: 500',
      queuedAt: '2026-03-01T11:00:00.000Z',
      createdAt: '2026-03-01T11:00:00.000Z',
      updatedAt: '2026-03-01T11:00:30.000Z',
      galleryAt: '2026-03-01T11:00:30.000Z',
    });
  });

  it('the full record of an image', async () => {
    const res = await t.call('GET', `/images/${full}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: full,
      projectId: owned1,
      projectTitle: 'Harbor',
      sceneIndex: 3,
      imageIndex: 1,
      status: 'succeeded',
      url: 'https://cdn.test/full.png',
      width: 1344,
      height: 768,
      mimeType: 'image/png',
      bytes: 123456,
      sha256: 'ab'.repeat(32),
      provider: 'openai',
      model: 'gpt-image-1',
      seed: 42,
      providerRequestId: 'req_abc123',
      attempts: 2,
      error: null,
      // The prompt the image was made from; the scene's prompt has changed since: stale.
      prompt: 'A lighthouse on a cliff at dawn',
      fullPrompt: 'A lighthouse on a cliff at dawn, watercolor style',
      revisedPrompt: 'A tall white lighthouse on a rocky cliff at dawn',
      style: 'watercolor',
      aspectRatio: '3:2',
      favorite: false,
      stale: true,
      version: 3,
      timings: { queuedAt: '2026-03-01T10:00:00.000Z', startedAt: '2026-03-01T10:00:01.250Z', finishedAt: '2026-03-01T10:00:09.500Z' },
      costUsd: 0.04,
      createdAt: '2026-03-01T09:59:59.000Z',
      updatedAt: '2026-03-01T10:00:09.500Z',
    });
    // The listing serves the same record.
    const listed = await t.call('GET', `/images?projectId=${owned1}&createdBefore=2026-03-01T10:00:10Z`);
    expect(listed.body.items).toEqual([res.body]);
  });

  it('a failed image: its error, no URL, no version, the cost unknown', async () => {
    const res = await t.call('GET', `/images/${failed}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'failed',
      url: null,
      error: 'provider error: 500',
      attempts: 3,
      version: null,
      costUsd: null,
      projectTitle: 'Forest',
      style: null,
      aspectRatio: '16:9',
      stale: false,
      timings: { queuedAt: '2026-03-01T11:00:00.000Z', startedAt: null, finishedAt: null },
    });
  });

  it('an unknown or malformed id is a 404; so is an image of another owner', async () => {
    for (const id of [randomUUID(), 'not-a-uuid', foreignImage]) {
      const res = await t.call('GET', `/images/${id}`);
      expect(res.status, id).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
      expect((await t.call('PATCH', `/images/${id}`, { favorite: true })).status, id).toBe(404);
    }
    const [row] = await t.db.sql<{ favorite: boolean }[]>`SELECT favorite FROM generated_images WHERE id = ${foreignImage}`;
    expect(row!.favorite).toBe(false);
  });

  it('PATCH favorite: answered, kept, listed under favorite=true, and the gallery order is unchanged', async () => {
    const before = await pageThrough({}, 100);
    const [times] = await t.db.sql<{ galleryAt: string; updatedAt: string }[]>`SELECT gallery_at, updated_at FROM generated_images WHERE id = ${full}`;
    const on = await t.call('PATCH', `/images/${full}`, { favorite: true });
    expect(on.status).toBe(200);
    expect(on.body.favorite).toBe(true);
    expect(on.body).toEqual({ ...(await t.call('GET', `/images/${full}`)).body, favorite: true });
    expect((await t.call('GET', '/images?favorite=true&limit=100')).body.items.map((i: any) => i.id)).toContain(full);
    expect((await t.call('GET', '/images?favorite=false&limit=100')).body.items.map((i: any) => i.id)).not.toContain(full);
    expect(await pageThrough({}, 100)).toEqual(before);
    const [after] = await t.db.sql<{ galleryAt: string; updatedAt: string }[]>`SELECT gallery_at, updated_at FROM generated_images WHERE id = ${full}`;
    expect(after).toEqual(times);

    const off = await t.call('PATCH', `/images/${full}`, { favorite: false });
    expect(off.status).toBe(200);
    expect(off.body.favorite).toBe(false);
    expect((await t.call('GET', `/images/${full}`)).body.favorite).toBe(false);
    expect((await t.call('GET', '/images?favorite=true&limit=100')).body.items.map((i: any) => i.id)).not.toContain(full);
  });

  it('PATCH takes exactly { "favorite": boolean } as JSON', async () => {
    for (const body of [{}, { favorite: 'true' }, { favorite: null }, { favorite: true, title: 'x' }, [], 'true']) {
      const res = await t.call('PATCH', `/images/${full}`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    expect((await t.call('PATCH', `/images/${full}`)).status).toBe(400);
    const wrongType = await t.call('PATCH', `/images/${full}`, 'favorite=true', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(wrongType.status).toBe(415);
    expect((await t.call('GET', `/images/${full}`)).body.favorite).toBe(false);
  });
});

describe('owner isolation (AUTH=jwt)', () => {
  const SECRET = 'a-legacy-jwt-secret-of-at-least-32-chars';
  let jwks: FakeJwks;
  let u: TestApp;
  const alice = randomUUID();
  const bob = randomUUID();
  let as: { alice: Record<string, string>; bob: Record<string, string>; operator: Record<string, string> };
  let aliceProject: string;
  let bobProject: string;
  let aliceImages: string[];
  let bobImages: string[];
  let legacyImage: string;

  async function finished(project: string, headers: Record<string, string>): Promise<string[]> {
    for (let i = 0; i < 600; i++) {
      const res = await u.call('GET', `/projects/${project}`, undefined, headers);
      if (!['queued', 'running'].includes(res.body.status)) return res.body.generatedOutput.scenes.flatMap((s: any) => s.images.map((i: any) => i.id));
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`project ${project} never finished`);
  }

  beforeAll(async () => {
    jwks = await startFakeJwks();
    u = await startTestApp({ AUTH: 'jwt', JWT_JWKS_URL: jwks.url, JWT_SECRET: SECRET });
    as = {
      alice: { authorization: `Bearer ${await jwks.sign(supabaseUserClaims({ sub: alice }))}` },
      bob: { authorization: `Bearer ${await jwks.sign(supabaseUserClaims({ sub: bob }))}` },
      operator: { authorization: `Bearer ${await supabaseLegacyKey(SECRET, 'service_role')}` },
    };
    const a = await u.call('POST', '/projects', { title: 'Alice', scenes: [{ prompt: 'alice lighthouse at dawn' }], imagesPerScene: 2 }, as.alice);
    const b = await u.call('POST', '/projects', { title: 'Bob', scenes: [{ prompt: 'bob lighthouse in the storm' }, { prompt: 'bob harbor' }] }, as.bob);
    expect([a.status, b.status]).toEqual([202, 202]);
    aliceProject = a.body.id;
    bobProject = b.body.id;
    aliceImages = await finished(aliceProject, as.alice);
    bobImages = await finished(bobProject, as.bob);
    const legacy = await insertProject(u.db.sql, null, 'Legacy');
    legacyImage = await insertImage(u.db.sql, legacy, null, { prompt: 'legacy lighthouse', galleryAt: new Date().toISOString() });
  });
  afterAll(async () => {
    await u?.close();
    await jwks?.close();
  });

  const ids = (res: { body: any }) => res.body.items.map((i: any) => i.id);
  const snapshot = () => u.db.sql`SELECT id, favorite, status, gallery_at, updated_at, owner_id FROM generated_images ORDER BY id`;

  it("a user lists and searches only their own images: never another user's, never unowned ones", async () => {
    expect(ids(await u.call('GET', '/images?limit=100', undefined, as.alice)).sort()).toEqual([...aliceImages].sort());
    expect(ids(await u.call('GET', '/images?limit=100', undefined, as.bob)).sort()).toEqual([...bobImages].sort());
    expect(ids(await u.call('GET', '/images?q=lighthouse', undefined, as.alice)).sort()).toEqual([...aliceImages].sort());
    expect(ids(await u.call('GET', '/images?q=bob', undefined, as.alice))).toEqual([]);
    expect(ids(await u.call('GET', `/images?projectId=${bobProject}`, undefined, as.alice))).toEqual([]);
    expect(ids(await u.call('GET', '/images?provider=local&favorite=false&limit=100', undefined, as.alice)).sort()).toEqual([...aliceImages].sort());
    for (const status of ['failed', 'queued', 'running']) expect(ids(await u.call('GET', `/images?status=${status}`, undefined, as.alice))).toEqual([]);
  });

  it("another user's image is a 404 to read or to favorite, like an unknown one, and nothing of it changes", async () => {
    const before = await snapshot();
    const unknown = await u.call('GET', `/images/${randomUUID()}`, undefined, as.alice);
    for (const id of [bobImages[0]!, legacyImage]) {
      const read = await u.call('GET', `/images/${id}`, undefined, as.alice);
      expect(read.status).toBe(404);
      expect(read.body.error).toMatchObject({ code: 'NOT_FOUND', message: unknown.body.error.message });
      const patch = await u.call('PATCH', `/images/${id}`, { favorite: true }, as.alice);
      expect(patch.status).toBe(404);
      expect(patch.body.error.code).toBe('NOT_FOUND');
    }
    expect(await snapshot()).toEqual(before);
    expect((await u.call('GET', `/images/${bobImages[0]}`, undefined, as.bob)).body.favorite).toBe(false);
  });

  it('a user reads and favorites their own; a private store signs the URL', async () => {
    const mine = await u.call('GET', `/images/${aliceImages[0]}`, undefined, as.alice);
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ projectId: aliceProject, projectTitle: 'Alice', prompt: 'alice lighthouse at dawn', provider: 'local', status: 'succeeded' });
    expect(mine.body.url).toMatch(/^http:\/\/sceneworks\.test\/files\/.+\?/);
    const fav = await u.call('PATCH', `/images/${aliceImages[0]}`, { favorite: true }, as.alice);
    expect(fav.status).toBe(200);
    expect(ids(await u.call('GET', '/images?favorite=true', undefined, as.alice))).toEqual([aliceImages[0]]);
    expect(ids(await u.call('GET', '/images?favorite=true', undefined, as.bob))).toEqual([]);
  });

  it('an operator sees every image, unowned ones too; acting for a user, only theirs', async () => {
    const all = ids(await u.call('GET', '/images?limit=100', undefined, as.operator));
    expect(all.sort()).toEqual([...aliceImages, ...bobImages, legacyImage].sort());
    expect(ids(await u.call('GET', '/images?q=lighthouse&limit=100', undefined, as.operator)).sort()).toEqual([...aliceImages, ...bobImages.slice(0, 1), legacyImage].sort());
    const forBob = { ...as.operator, 'x-owner-id': bob };
    expect(ids(await u.call('GET', '/images?limit=100', undefined, forBob)).sort()).toEqual([...bobImages].sort());
    expect((await u.call('GET', `/images/${aliceImages[0]}`, undefined, forBob)).status).toBe(404);
    expect((await u.call('PATCH', `/images/${aliceImages[1]}`, { favorite: true }, forBob)).status).toBe(404);
    expect((await u.call('GET', `/images/${legacyImage}`, undefined, as.operator)).status).toBe(200);
  });

  it('no token: 401 on every gallery route', async () => {
    for (const [method, path] of [['GET', '/images'], ['GET', `/images/${aliceImages[0]}`], ['PATCH', `/images/${aliceImages[0]}`]] as const) {
      const res = await u.call(method, path, method === 'PATCH' ? { favorite: true } : undefined);
      expect(res.status, `${method} ${path}`).toBe(401);
    }
  });
});
