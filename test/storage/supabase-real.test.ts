import { randomBytes } from 'node:crypto';
import { StorageClient, type StorageError } from '@supabase/storage-js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/storage/store.ts';
import { createSupabaseStore, exactStorageUrl, storageApiUrl } from '../../src/storage/supabase.ts';
import { startFakeSupabaseStorage, type FakeSupabaseStorage } from '../fakes/supabase-storage.ts';
import { imageBytes, KEY, keyN } from './objects.ts';

/**
 * A bucket that is not there, by meaning: the server says "404" as a string in an error body,
 * Fastify and gateways as a number or by HTTP status. Cleanup must not report those as left behind.
 */
function isGone(error: StorageError): boolean {
  const code = 'code' in error ? error.code : undefined;
  return code === 'NoSuchBucket' || String(error.statusCode) === '404' || error.status === 404;
}

describe('isGone, which the real-server cleanup relies on', () => {
  let fake: FakeSupabaseStorage;
  afterEach(() => fake.close());

  it('reads "not found" by meaning, whatever type or status carries it', async () => {
    fake = await startFakeSupabaseStorage({ prefix: '/storage/v1' });
    const admin = (url: string) => new StorageClient(url, { Authorization: `Bearer ${fake.serviceRoleKey}` });
    const missing = (await admin(fake.url).deleteBucket('never-created')).error!;
    expect(missing).toMatchObject({ status: 400, statusCode: '404' });
    expect(isGone(missing)).toBe(true);
    const unrouted = (await admin(fake.origin).deleteBucket('never-created')).error!;
    expect(unrouted).toMatchObject({ status: 404, statusCode: 404 }); // a number: the comparison the old cleanup got wrong
    expect(isGone(unrouted)).toBe(true);

    await admin(fake.url).createBucket('kept');
    fake.objects.set('kept/x.png', { bytes: Buffer.from('x'), contentType: 'image/png', cacheControl: undefined });
    expect(isGone((await admin(fake.url).deleteBucket('kept')).error!)).toBe(false); // not empty: 409
    fake.script('deleteBucket:500');
    expect(isGone((await admin(fake.url).deleteBucket('kept')).error!)).toBe(false);
  });
});

// Opt-in: a real Supabase Storage server. SUPABASE_TEST_URL: a project URL (hosted, `supabase start`,
// a self-hosted gateway) or a Storage API URL with a path; SUPABASE_TEST_STORAGE_URL instead: the
// Storage API's own URL used as is (a bare storage server at the root of its host).
const realStorageUrl = process.env.SUPABASE_TEST_STORAGE_URL;
const realUrl = process.env.SUPABASE_TEST_URL;
const realKey = process.env.SUPABASE_TEST_SERVICE_ROLE_KEY;
if ((realStorageUrl || realUrl) && realKey) {
  describe('Supabase store against a real Supabase Storage server', () => {
    const location = realStorageUrl ? { storageUrl: realStorageUrl } : { url: realUrl! };
    const base = realStorageUrl ? exactStorageUrl(realStorageUrl) : storageApiUrl(realUrl!);
    const suffix = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const admin = new StorageClient(base, { apikey: realKey, Authorization: `Bearer ${realKey}` });
    const created: string[] = [];
    const storeFor = (bucket: string, isPublic: boolean, serviceRoleKey = realKey) => {
      created.push(bucket);
      return createSupabaseStore({ ...location, serviceRoleKey, bucket, public: isPublic, signedUrlTtlS: 120 });
    };

    afterAll(async () => {
      const problems: string[] = [];
      for (const id of new Set(created)) {
        // The keys these tests put, removed at once (emptyBucket may only queue the removal on newer servers).
        await admin.from(id).remove(Array.from({ length: 10 }, (_, n) => keyN(n)));
        const { error } = await admin.deleteBucket(id);
        if (error && !isGone(error)) problems.push(`${id}: ${error.message}`);
      }
      if (problems.length > 0) throw new Error(`test buckets left behind: ${problems.join('; ')}`);
    });

    it('public bucket: init, put, fetch, a repeated put, remove', async () => {
      const store = storeFor(`sceneworks-test-pub-${suffix}`, true);
      await store.init!();
      await store.init!();
      const bytes = imageBytes(7);
      const { url } = await store.put(KEY, bytes, 'image/png');
      const res = await fetch(url!);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), Buffer.from(bytes))).toBe(0);
      // A retry of a put whose answer was lost: the same bytes succeed, other bytes never replace them.
      expect(await store.put(KEY, bytes, 'image/png')).toEqual({ url });
      const error = await store.put(KEY, imageBytes(8), 'image/png').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ permanent: true, code: 'KeyAlreadyExists' });
      await store.remove([KEY, keyN(9)]);
      expect(await store.signUrls!([KEY])).toEqual(new Map());
    });

    it('private bucket: put, sign many, fetch, remove', async () => {
      const store = storeFor(`sceneworks-test-priv-${suffix}`, false);
      await store.init!();
      for (const n of [1, 2]) expect(await store.put(keyN(n), imageBytes(n), 'image/webp')).toEqual({ url: null });
      expect(await store.put(keyN(1), imageBytes(1), 'image/webp')).toEqual({ url: null });
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

    it('refusals that no retry can change are permanent: too large (413), a type the bucket refuses (415), a bad key (403)', async () => {
      const bucket = `sceneworks-test-limits-${suffix}`;
      created.push(bucket);
      const { error: createError } = await admin.createBucket(bucket, { public: true, fileSizeLimit: 1000, allowedMimeTypes: ['image/webp'] });
      expect(createError).toBeNull();
      const store = storeFor(bucket, true);
      await store.init!();
      const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
      expect(await refusal(store.put(KEY, imageBytes(1, 1500), 'image/webp'))).toMatchObject({ permanent: true, code: 'EntityTooLarge' });
      expect(await refusal(store.put(KEY, imageBytes(1, 500), 'image/png'))).toMatchObject({ permanent: true, code: 'InvalidMimeType' });
      const denied = await refusal(storeFor(bucket, true, 'not-a-valid-key').put(KEY, imageBytes(1, 500), 'image/webp'));
      expect(denied).toBeInstanceOf(StoreError);
      expect(denied).toMatchObject({ permanent: true });
      expect(await store.put(KEY, imageBytes(1, 500), 'image/webp')).toMatchObject({ url: expect.stringContaining(KEY) });
    });
  });
}
