import { randomBytes } from 'node:crypto';
import { StorageClient } from '@supabase/storage-js';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSupabaseStore, storageApiUrl, type SupabaseStoreOptions } from '../../src/storage/supabase.ts';
import { startFakeSupabaseStorage, type FakeSupabaseStorage } from '../fakes/supabase-storage.ts';

const KEY = 'projects/p1/scene-0/image-0-g1-a1.png';
const keyN = (n: number) => `projects/p1/scene-${n}/image-0-g1-a1.png`;

/** Bytes that are a view into a larger buffer: only the view may be stored. */
function imageBytes(seed: number): Uint8Array {
  const backing = Buffer.alloc(4096, 0xee);
  const view = backing.subarray(100, 100 + 1500);
  for (let i = 0; i < view.length; i++) view[i] = (i * 31 + seed) & 0xff;
  return view;
}

describe('storageApiUrl', () => {
  it.each([
    ['https://abc.supabase.co', 'https://abc.supabase.co/storage/v1'],
    ['https://abc.supabase.co/', 'https://abc.supabase.co/storage/v1'],
    ['http://127.0.0.1:54321', 'http://127.0.0.1:54321/storage/v1'],
    ['https://abc.supabase.co/storage/v1', 'https://abc.supabase.co/storage/v1'],
    ['https://abc.supabase.co/storage/v1/', 'https://abc.supabase.co/storage/v1'],
    ['http://proxy:8080/storage-api', 'http://proxy:8080/storage-api'],
  ])('%s → %s', (url, expected) => {
    expect(storageApiUrl(url)).toBe(expected);
  });

  it('refuses a query or a fragment', () => {
    expect(() => storageApiUrl('https://abc.supabase.co?x=1')).toThrow(/query or a fragment/);
  });
});

describe('Supabase store against the fake Storage API', () => {
  let fake: FakeSupabaseStorage;
  beforeEach(async () => {
    fake = await startFakeSupabaseStorage({ prefix: '/storage/v1' });
  });
  afterEach(async () => {
    await fake.close();
  });

  /** A project URL, as users configure it: the store finds /storage/v1 itself. */
  const storeFor = (over: Partial<SupabaseStoreOptions> = {}) =>
    createSupabaseStore({ url: fake.origin, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 600, ...over });
  const routes = (route: string) => fake.requests.filter((r) => r.route === route);

  it.each([true, false])('init creates a missing bucket (public: %s) with the service role as bearer', async (isPublic) => {
    await storeFor({ public: isPublic }).init!();
    expect(fake.buckets.get('scenes')?.public).toBe(isPublic);
    const [create] = routes('createBucket');
    expect(create?.headers.authorization).toBe(`Bearer ${fake.serviceRoleKey}`);
    expect(create?.body).toMatchObject({ id: 'scenes', public: isPublic });
  });

  it('init is idempotent, also when two instances start at once', async () => {
    await Promise.all([storeFor().init!(), storeFor().init!()]);
    await storeFor().init!();
    expect(fake.buckets.size).toBe(1);
    expect(routes('createBucket').length).toBe(2); // the race: one created it, the other got "Duplicate"
    expect(fake.requests.at(-1)?.route).toBe('getBucket'); // the third start only looked
  });

  it('init refuses a bucket whose visibility differs from the configuration', async () => {
    await storeFor({ public: false }).init!();
    await expect(storeFor({ public: true }).init!()).rejects.toThrow(/is private, but the configuration says public/);
    await storeFor({ bucket: 'open', public: true }).init!();
    await expect(storeFor({ bucket: 'open', public: false }).init!()).rejects.toThrow(/is public, but the configuration says private/);
  });

  it('init fails on a bad key with the server message, never with the key in it', async () => {
    const error = await storeFor({ serviceRoleKey: 'not-the-key' }).init!().catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/cannot read bucket "scenes".*invalid signature/);
    expect((error as Error).cause).toBeDefined();
    expect(JSON.stringify({ m: (error as Error).message, c: (error as Error).cause })).not.toContain('not-the-key');
    expect(fake.buckets.size).toBe(0);
  });

  it('put stores the exact bytes and content type, and the public URL serves them', async () => {
    const store = storeFor();
    await store.init!();
    const bytes = imageBytes(1);
    const { url } = await store.put(KEY, bytes, 'image/png');

    expect(url).toBe(`${fake.url}/object/public/scenes/${KEY}`);
    const stored = fake.objects.get(`scenes/${KEY}`);
    expect(stored?.contentType).toBe('image/png');
    expect(stored?.cacheControl).toBe('max-age=31536000');
    expect(Buffer.compare(stored!.bytes, Buffer.from(bytes))).toBe(0);
    expect(routes('upload')[0]?.headers['x-upsert']).toBe('false');

    const res = await fetch(url!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), Buffer.from(bytes))).toBe(0);
  });

  it('put to an existing key fails instead of overwriting', async () => {
    const store = storeFor();
    await store.init!();
    await store.put(KEY, imageBytes(1), 'image/png');
    await expect(store.put(KEY, imageBytes(2), 'image/png')).rejects.toThrow(/cannot store .*The resource already exists/);
    expect(fake.objects.get(`scenes/${KEY}`)!.bytes[0]).toBe(imageBytes(1)[0]);
  });

  it.each([
    ['upload:500', /Internal Server Error \(HTTP 500\)/],
    ['upload:413', /exceeded the maximum allowed size \(HTTP 413\)/],
    ['upload:reset', /cannot store/],
  ] as const)('an upload fault (%s) makes put throw, never return a URL', async (fault, message) => {
    const store = storeFor();
    await store.init!();
    fake.script(fault);
    const error = await store.put(KEY, imageBytes(1), 'image/png').then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(message);
    expect(error?.cause).toBeDefined();
  });

  it('refuses keys and bucket names the client would put in a URL unencoded, before any request', async () => {
    expect(() => storeFor({ bucket: 'a/b' })).toThrow(/invalid bucket name/);
    const store = storeFor();
    await expect(store.put('projects/../x.png', imageBytes(1), 'image/png')).rejects.toThrow(/invalid storage key/);
    await expect(store.put('projects/a?b.png', imageBytes(1), 'image/png')).rejects.toThrow(/invalid storage key/);
    expect(fake.requests).toEqual([]);
  });

  it('a hung upload fails after the timeout', async () => {
    const store = storeFor({ timeoutMs: 300 });
    await store.init!();
    fake.script('upload:hang');
    await expect(store.put(KEY, imageBytes(1), 'image/png')).rejects.toThrow(/cannot store/);
  });

  it('remove removes many objects in one request and tolerates missing ones', async () => {
    const store = storeFor();
    await store.init!();
    for (const n of [1, 2, 3]) await store.put(keyN(n), imageBytes(n), 'image/webp');
    await store.remove([keyN(1), keyN(2), keyN(3), keyN(9)]);
    expect(fake.objects.size).toBe(0);
    const removes = routes('remove');
    expect(removes.length).toBe(1);
    expect(removes[0]?.body).toEqual({ prefixes: [keyN(1), keyN(2), keyN(3), keyN(9)] });

    await store.remove([]);
    await store.remove(Array.from({ length: 1001 }, (_, i) => keyN(i))); // past the API's 1,000 per request
    expect(routes('remove').length).toBe(3);
  });

  it('a failed remove throws', async () => {
    const store = storeFor();
    await store.init!();
    fake.script('remove:500');
    await expect(store.remove([KEY])).rejects.toThrow(/cannot remove 1 objects/);
  });

  describe('private bucket', () => {
    it('put returns no URL; signUrls signs many keys in one request, and the URLs serve the bytes', async () => {
      const store = storeFor({ public: false, signedUrlTtlS: 900 });
      await store.init!();
      for (const n of [1, 2, 3]) expect(await store.put(keyN(n), imageBytes(n), 'image/jpeg')).toEqual({ url: null });

      const signed = await store.signUrls!([keyN(1), keyN(2), keyN(3), keyN(9)]);
      const signs = routes('signMany');
      expect(signs.length).toBe(1);
      expect(signs[0]?.body).toEqual({ expiresIn: 900, paths: [keyN(1), keyN(2), keyN(3), keyN(9)] });
      expect(store.signedUrlTtlS).toBe(900);
      expect([...signed.keys()].sort()).toEqual([keyN(1), keyN(2), keyN(3)]); // the missing one is left out

      for (const n of [1, 2, 3]) {
        const url = signed.get(keyN(n))!;
        expect(url.startsWith(`${fake.url}/object/sign/scenes/${keyN(n)}?token=`)).toBe(true);
        const res = await fetch(url);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/jpeg');
        expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), Buffer.from(imageBytes(n)))).toBe(0);
      }
      // A token names its object: it opens no other.
      const other = await fetch(signed.get(keyN(1))!.replace(keyN(1), keyN(2)));
      expect(other.status).toBe(400);
    });

    it('the public URL of a private object does not serve it', async () => {
      const store = storeFor({ public: false });
      await store.init!();
      await store.put(KEY, imageBytes(1), 'image/png');
      const res = await fetch(`${fake.url}/object/public/scenes/${KEY}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: '404' });
    });

    it('a failed signing request throws', async () => {
      const store = storeFor({ public: false });
      await store.init!();
      await store.put(KEY, imageBytes(1), 'image/png');
      fake.script('signMany:500');
      await expect(store.signUrls!([KEY])).rejects.toThrow(/cannot sign 1 URLs/);
    });
  });
});

describe('Supabase store URL forms', () => {
  let fake: FakeSupabaseStorage | undefined;
  afterEach(async () => {
    await fake?.close();
  });

  it.each(['/storage/v1', '/storage-api'])('a URL with a path (%s) is the Storage API itself', async (prefix) => {
    fake = await startFakeSupabaseStorage({ prefix });
    const store = createSupabaseStore({ url: fake.url, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 60 });
    await store.init!();
    const { url } = await store.put(KEY, imageBytes(1), 'image/png');
    expect(url).toBe(`${fake.url}/object/public/scenes/${KEY}`);
    expect((await fetch(url!)).status).toBe(200);
  });

  it('a bare server at the root is read as a project URL: init fails with a hint and creates nothing', async () => {
    fake = await startFakeSupabaseStorage({ prefix: '' });
    const store = createSupabaseStore({ url: fake.url, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 60 });
    await expect(store.init!()).rejects.toThrow(/no Supabase Storage API at .*\/storage\/v1: a URL without a path is read as a project URL/);
    expect(fake.requests.map((r) => r.path)).toEqual(['/storage/v1/bucket/scenes']);
    expect(fake.buckets.size).toBe(0);
  });
});

// Opt-in: a real Supabase Storage server (hosted project, `supabase start`, or self-hosted).
const realUrl = process.env.SUPABASE_TEST_URL;
const realKey = process.env.SUPABASE_TEST_SERVICE_ROLE_KEY;
if (realUrl && realKey) {
  describe('Supabase store against a real Supabase Storage server', () => {
    const suffix = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const admin = new StorageClient(storageApiUrl(realUrl), { apikey: realKey, Authorization: `Bearer ${realKey}` });
    const created: string[] = [];
    const storeFor = (bucket: string, isPublic: boolean) => {
      created.push(bucket);
      return createSupabaseStore({ url: realUrl, serviceRoleKey: realKey, bucket, public: isPublic, signedUrlTtlS: 120 });
    };

    afterAll(async () => {
      const problems: string[] = [];
      for (const id of created) {
        await admin.emptyBucket(id);
        const { error } = await admin.deleteBucket(id);
        if (error && error.statusCode !== '404') problems.push(`${id}: ${error.message}`);
      }
      if (problems.length > 0) throw new Error(`test buckets left behind: ${problems.join('; ')}`);
    });

    it('public bucket: init, put, fetch, remove', async () => {
      const store = storeFor(`sceneworks-test-pub-${suffix}`, true);
      await store.init!();
      await store.init!();
      const bytes = imageBytes(7);
      const { url } = await store.put(KEY, bytes, 'image/png');
      const res = await fetch(url!);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), Buffer.from(bytes))).toBe(0);
      await expect(store.put(KEY, bytes, 'image/png')).rejects.toThrow(/cannot store/);
      await store.remove([KEY, keyN(9)]);
      expect(await store.signUrls!([KEY])).toEqual(new Map());
    });

    it('private bucket: put, sign many, fetch, remove', async () => {
      const store = storeFor(`sceneworks-test-priv-${suffix}`, false);
      await store.init!();
      for (const n of [1, 2]) expect(await store.put(keyN(n), imageBytes(n), 'image/webp')).toEqual({ url: null });
      const signed = await store.signUrls!([keyN(1), keyN(2), keyN(9)]);
      expect([...signed.keys()].sort()).toEqual([keyN(1), keyN(2)]);
      for (const n of [1, 2]) {
        const res = await fetch(signed.get(keyN(n))!);
        expect(res.status).toBe(200);
        expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), Buffer.from(imageBytes(n)))).toBe(0);
      }
      expect((await fetch(admin.from(`sceneworks-test-priv-${suffix}`).getPublicUrl(keyN(1)).data.publicUrl)).status).toBe(400);
      await store.remove([keyN(1), keyN(2)]);
    });
  });
}
