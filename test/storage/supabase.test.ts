import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/storage/store.ts';
import { createSupabaseStore, storageApiUrl, type SupabaseStoreOptions } from '../../src/storage/supabase.ts';
import { startFakeSupabaseStorage, type FakeSupabaseStorage } from '../fakes/supabase-storage.ts';
import { imageBytes, KEY, keyN } from './objects.ts';

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

  it('put to an existing key of other bytes fails, permanently, instead of overwriting', async () => {
    const store = storeFor();
    await store.init!();
    await store.put(KEY, imageBytes(1), 'image/png');
    const error = await store.put(KEY, imageBytes(2), 'image/png').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ permanent: true, code: 'KeyAlreadyExists' });
    expect((error as Error).message).toMatch(/cannot store .*another object is already stored under this key/);
    expect(Buffer.compare(fake.objects.get(`scenes/${KEY}`)!.bytes, Buffer.from(imageBytes(1)))).toBe(0);
    expect(routes('upload').map((r) => r.headers['x-upsert'])).toEqual(['false', 'false']);
  });

  it.each([
    ['upload:500', /Internal server error \(HTTP 500\)/],
    ['upload:reset', /cannot store .*fetch failed/],
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
    for (const key of ['projects/../x.png', 'projects/a?b.png']) {
      const error = await store.put(key, imageBytes(1), 'image/png').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ permanent: true, code: 'InvalidKey', message: `invalid storage key: ${key}` });
    }
    // Without one the client would label the image text/plain.
    await expect(store.put(KEY, imageBytes(1), '')).rejects.toMatchObject({ permanent: true, message: `no content type for ${KEY}` });
    expect(fake.requests).toEqual([]);
  });

  it('a hung upload fails after the timeout, as a failure worth retrying', async () => {
    const store = storeFor({ timeoutMs: 300 });
    await store.init!();
    fake.script('upload:hang');
    const error = await store.put(KEY, imageBytes(1), 'image/png').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ permanent: false, code: 'TimeoutError' });
    expect((error as Error).message).toMatch(/cannot store/);
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
    const error = await store.remove([KEY]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ permanent: false, code: 'InternalError', message: expect.stringMatching(/cannot remove 1 objects/) });
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
      const error = await store.signUrls!([KEY]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ permanent: false, code: 'InternalError', message: expect.stringMatching(/cannot sign 1 URLs/) });
    });
  });
});

describe('Supabase store URL forms', () => {
  let fake: FakeSupabaseStorage | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it.each(['/storage/v1', '/storage-api'])('a URL with a path (%s) is the Storage API itself', async (prefix) => {
    fake = await startFakeSupabaseStorage({ prefix });
    const store = createSupabaseStore({ url: fake.url, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 60 });
    await store.init!();
    const { url } = await store.put(KEY, imageBytes(1), 'image/png');
    expect(url).toBe(`${fake.url}/object/public/scenes/${KEY}`);
    expect((await fetch(url!)).status).toBe(200);
  });

  it('a bare server at the root given as a project URL: init fails with a hint naming the way out, and creates nothing', async () => {
    fake = await startFakeSupabaseStorage({ prefix: '' });
    const store = createSupabaseStore({ url: fake.url, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 60 });
    const error = await store.init!().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toMatch(/no Supabase Storage API at .*\/storage\/v1: a URL without a path is read as a project URL.*SUPABASE_STORAGE_URL/);
    expect(fake.requests.map((r) => r.path)).toEqual(['/storage/v1/bucket/scenes']);
    expect(fake.buckets.size).toBe(0);
  });

  it('a bare server at the root given as the Storage API URL (storageUrl) is used as is', async () => {
    fake = await startFakeSupabaseStorage({ prefix: '' });
    const store = createSupabaseStore({ storageUrl: `${fake.url}/`, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 60 });
    await store.init!();
    const { url } = await store.put(KEY, imageBytes(1), 'image/png');
    expect(url).toBe(`${fake.origin}/object/public/scenes/${KEY}`);
    expect((await fetch(url!)).status).toBe(200);
    expect(fake.requests.map((r) => r.path).slice(0, 2)).toEqual(['/bucket/scenes', '/bucket']);
  });

  it('storageUrl is never completed: a project URL given there is not the Storage API', async () => {
    fake = await startFakeSupabaseStorage({ prefix: '/storage/v1' });
    const store = createSupabaseStore({ storageUrl: fake.origin, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 60 });
    await expect(store.init!()).rejects.toThrow(new RegExp(`no Supabase Storage API at ${fake.origin}: the Storage API URL is used as is`));
    expect(fake.requests.map((r) => r.path)).toEqual(['/bucket/scenes']);
    expect(fake.buckets.size).toBe(0);
  });

  it('takes exactly one of url and storageUrl', () => {
    const rest = { serviceRoleKey: 'k', bucket: 'scenes', public: true, signedUrlTtlS: 60 };
    expect(() => createSupabaseStore(rest)).toThrow(/exactly one of them/);
    expect(() => createSupabaseStore({ ...rest, url: 'http://a.test', storageUrl: 'http://b.test' })).toThrow(/exactly one of them/);
    expect(() => createSupabaseStore({ ...rest, storageUrl: 'http://b.test?x=1' })).toThrow(/query or a fragment/);
    expect(() => createSupabaseStore({ ...rest, storageUrl: 'ftp://b.test' })).toThrow(/http or https/);
  });
});
