import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSupabaseStorage, type FakeSupabaseStorage } from '../fakes/supabase-storage.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/** The whole service storing into (a fake of) Supabase Storage, by configuration alone. */
let storage: FakeSupabaseStorage;
beforeAll(async () => {
  storage = await startFakeSupabaseStorage({ prefix: '/storage/v1' });
});
afterAll(() => storage.close());

function env(bucket: string, isPublic: boolean) {
  return {
    STORAGE: 'supabase',
    SUPABASE_URL: storage.origin,
    SUPABASE_SERVICE_ROLE_KEY: storage.serviceRoleKey,
    STORAGE_BUCKET: bucket,
    STORAGE_PUBLIC: String(isPublic),
    SIGNED_URL_TTL_S: '600',
  };
}

async function fetchPng(url: string) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return sharp(Buffer.from(await res.arrayBuffer())).metadata();
}

describe('STORAGE=supabase', () => {
  let t: TestApp;
  afterAll(() => t?.close());

  it('a public bucket: created at start, images stored as image/png, their public URLs in the rows', async () => {
    t = await startTestApp(env('scenes-public', true));
    expect(storage.buckets.get('scenes-public')).toMatchObject({ public: true });
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'one' }, { prompt: 'two' }], imagesPerScene: 2, aspectRatio: '1:1' });
    const done = await t.waitForProject(created.body.id);
    expect(done.status).toBe('completed');
    const urls: string[] = done.generatedOutput.scenes.flatMap((s: any) => s.imageUrls);
    expect(urls).toHaveLength(4);
    for (const url of urls) {
      expect(url.startsWith(`${storage.origin}/storage/v1/object/public/scenes-public/projects/${done.id}/`)).toBe(true);
      expect(await fetchPng(url)).toMatchObject({ format: 'png', width: 1024, height: 1024 });
    }
    const stored = [...storage.objects.entries()].filter(([k]) => k.startsWith(`scenes-public/projects/${done.id}/`));
    expect(stored).toHaveLength(4);
    for (const [, o] of stored) expect(o.contentType).toBe('image/png');
    // /files is the local store's; with Supabase there is none.
    expect((await t.call('GET', '/files/anything.png')).status).toBe(404);

    // A regenerate keeps the images it replaced as versions: their objects stay, two new ones join.
    const before = new Set(stored.map(([k]) => k));
    await t.call('POST', `/projects/${done.id}/scenes/1/regenerate`, {});
    const after = await t.waitForProject(done.id);
    const projectKeys = () => [...storage.objects.keys()].filter((k) => k.startsWith(`scenes-public/projects/${done.id}/`));
    const keys = projectKeys();
    expect(keys).toHaveLength(6);
    expect(keys.filter((k) => before.has(k))).toHaveLength(4);
    expect(after.generatedOutput.scenes[1]).toEqual(done.generatedOutput.scenes[1]);
    const replaced = after.generatedOutput.scenes[0].images[0];
    const versions = await t.call('GET', `/images/${replaced.id}/versions`);
    expect(versions.body.items.map((v: any) => v.url)).toEqual(expect.arrayContaining([done.generatedOutput.scenes[0].imageUrls[0]]));

    // Deleting the project removes every object it stored, versions and an orphan no row names
    // (a worker that died after its upload) included: the folder is listed and emptied.
    storage.objects.set(`scenes-public/projects/${done.id}/scene-9/orphan.png`, { bytes: Buffer.from('x'), contentType: 'image/png', cacheControl: undefined });
    expect((await t.call('DELETE', `/projects/${done.id}`)).status).toBe(204);
    expect(projectKeys()).toEqual([]);
    expect(storage.requests.some((r) => r.route === 'list')).toBe(true);
    await t.close();
  });

  it('a private bucket: rows keep the key, every read signs fresh URLs in one call', async () => {
    t = await startTestApp(env('scenes-private', false));
    expect(storage.buckets.get('scenes-private')).toMatchObject({ public: false });
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'secret' }], imagesPerScene: 3, aspectRatio: '16:9' });
    const done = await t.waitForProject(created.body.id);
    const rows = await t.db.sql<{ imageUrl: string | null; storageKey: string }[]>`
      SELECT image_url, storage_key FROM generated_images WHERE content_creation_request_id = ${done.id}`;
    expect(rows.every((r) => r.imageUrl === null && r.storageKey.startsWith(`projects/${done.id}/`))).toBe(true);

    const signsBefore = storage.requests.filter((r) => r.route === 'signMany').length;
    const read = await t.call('GET', `/projects/${done.id}`);
    const urls: string[] = read.body.generatedOutput.scenes[0].imageUrls;
    expect(urls).toHaveLength(3);
    for (const url of urls) {
      expect(url).toContain('/object/sign/scenes-private/');
      expect(await fetchPng(url)).toMatchObject({ format: 'png', width: 1344, height: 768 });
      // Not served publicly.
      expect((await fetch(url.replace('/object/sign/', '/object/public/').replace(/\?.*$/, ''))).status).not.toBe(200);
    }
    expect(storage.requests.filter((r) => r.route === 'signMany').length - signsBefore).toBeLessThanOrEqual(1);
    await t.close();
  });

  it('a failed upload is a failed attempt, never a row pointing at nothing', async () => {
    t = await startTestApp({ ...env('scenes-faulty', true), MAX_ATTEMPTS: '2' });
    storage.script('upload:500', 'upload:500');
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }] });
    const done = await t.waitForProject(created.body.id);
    const [row] = await t.db.sql<{ status: string; imageUrl: string | null; error: string }[]>`
      SELECT status, image_url, error FROM generated_images WHERE content_creation_request_id = ${done.id}`;
    expect(row!.status).toBe('failed');
    expect(row!.imageUrl).toBeNull();
    expect(row!.error).toMatch(/cannot store/);
    await t.close();
  });

  it('an upload stored but whose answer was lost: the retry finds it, the slot succeeds, nothing is orphaned', async () => {
    t = await startTestApp({ ...env('scenes-lost', true), MAX_ATTEMPTS: '3', RETRY_BASE_MS: '10' });
    const uploadsBefore = storage.requests.filter((r) => r.route === 'upload').length;
    storage.script('upload:reset');
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'paid for' }] });
    const done = await t.waitForProject(created.body.id);
    expect(done.status).toBe('completed');
    const [row] = await t.db.sql<{ status: string; imageUrl: string; storageKey: string }[]>`
      SELECT status, image_url, storage_key FROM generated_images WHERE content_creation_request_id = ${done.id}`;
    expect(row!.status).toBe('succeeded');
    expect(row!.imageUrl).toBe(`${storage.url}/object/public/scenes-lost/${row!.storageKey}`);
    expect([...storage.objects.keys()].filter((k) => k.startsWith('scenes-lost/'))).toEqual([`scenes-lost/${row!.storageKey}`]);
    expect(storage.requests.filter((r) => r.route === 'upload').length - uploadsBefore).toBe(2); // lost, then "exists, and ours"
    expect(await fetchPng(row!.imageUrl)).toMatchObject({ format: 'png' });
    await t.close();
  });

  // As the real server answers them: HTTP 400, the real status in the body's statusCode.
  const tooLarge = (bucket: string) => void (storage.buckets.get(bucket)!.file_size_limit = 100);
  const jpegOnly = (bucket: string) => void (storage.buckets.get(bucket)!.allowed_mime_types = ['image/jpeg']);
  const denied = () => storage.script('upload:403');
  it.each<[string, (bucket: string) => void, RegExp]>([
    ['too large (413)', tooLarge, /exceeded the maximum allowed size.*larger than the bucket or the server accepts/],
    ['a type the bucket refuses (415)', jpegOnly, /mime type image\/png is not supported.*the bucket does not accept image\/png/],
    ['a policy that denies it (403)', denied, /row-level security policy.*SUPABASE_SERVICE_ROLE_KEY/],
  ])('a refusal no retry can change, %s, fails the slot after one upload with the reason in its error', async (what, refuse, reason) => {
    const bucket = `scenes-refused-${what.replace(/\D/g, '')}`;
    t = await startTestApp({ ...env(bucket, true), MAX_ATTEMPTS: '3', RETRY_BASE_MS: '10' });
    refuse(bucket);
    const uploadsBefore = storage.requests.filter((r) => r.route === 'upload').length;
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }] });
    const done = await t.waitForProject(created.body.id);
    expect(done.status).toBe('failed');
    const [row] = await t.db.sql<{ status: string; imageUrl: string | null; error: string }[]>`
      SELECT status, image_url, error FROM generated_images WHERE content_creation_request_id = ${done.id}`;
    expect(row!.status).toBe('failed');
    expect(row!.imageUrl).toBeNull();
    expect(row!.error).toMatch(reason);
    expect([...storage.objects.keys()].filter((k) => k.startsWith(`${bucket}/`))).toEqual([]);
    // Refused once, not MAX_ATTEMPTS times: asking again cannot change the answer.
    expect(storage.requests.filter((r) => r.route === 'upload').length - uploadsBefore).toBe(1);
    await t.close();
  });
});

describe('SUPABASE_STORAGE_URL: a bare Storage server at the root of its host', () => {
  // Beside SUPABASE_URL (there for AUTH=jwt's keys, say) it still wins: the project's Storage is not touched.
  it.each([false, true])('is used as is, and the whole service stores and serves through it (SUPABASE_URL set too: %s)', async (withProjectUrl) => {
    const bare = await startFakeSupabaseStorage({ prefix: '' });
    const projectRequests = storage.requests.length;
    const t = await startTestApp({
      STORAGE: 'supabase',
      ...(withProjectUrl ? { SUPABASE_URL: storage.origin } : {}),
      SUPABASE_STORAGE_URL: bare.origin,
      SUPABASE_SERVICE_ROLE_KEY: bare.serviceRoleKey,
      STORAGE_BUCKET: 'bare-root',
      STORAGE_PUBLIC: 'true',
    });
    try {
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'bare' }] });
      const done = await t.waitForProject(created.body.id);
      expect(done.status).toBe('completed');
      const [url] = done.generatedOutput.scenes[0].imageUrls;
      expect(url.startsWith(`${bare.origin}/object/public/bare-root/`)).toBe(true);
      expect((await fetchPng(url)).format).toBe('png');
      expect(bare.requests.every((r) => !r.path.startsWith('/storage/v1'))).toBe(true);
      expect(storage.requests.length).toBe(projectRequests);
    } finally {
      await t.close();
      await bare.close();
    }
  });
});
