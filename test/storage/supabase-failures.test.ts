import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pRetry from 'p-retry';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/storage/store.ts';
import { createSupabaseStore, type SupabaseStoreOptions } from '../../src/storage/supabase.ts';
import { startFakeSupabaseStorage, type FakeStorageOptions, type FakeSupabaseStorage } from '../fakes/supabase-storage.ts';
import { imageBytes, KEY } from './objects.ts';

/** What a put, init, ... threw, checked to be a StoreError. */
async function storeErrorOf(promise: Promise<unknown>): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

let fake: FakeSupabaseStorage;
async function startFake(options: FakeStorageOptions = {}) {
  fake = await startFakeSupabaseStorage({ prefix: '/storage/v1', ...options });
}
afterEach(async () => {
  await fake?.close();
});
const storeFor = (over: Partial<SupabaseStoreOptions> = {}) =>
  createSupabaseStore({ url: fake.origin, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: true, signedUrlTtlS: 600, ...over });
const routes = (route: string) => fake.requests.filter((r) => r.route === route);
const storedBytes = () => fake.objects.get(`scenes/${KEY}`)?.bytes;

describe('a put whose upload was stored but whose answer was lost', () => {
  beforeEach(() => startFake());

  it.each([true, false])('is repeated by the caller with the same key, and the repeat succeeds (public: %s)', async (isPublic) => {
    const store = storeFor({ public: isPublic });
    await store.init!();
    fake.script('upload:reset');
    const bytes = imageBytes(1);
    let calls = 0;
    // The runner's way: the same key, retried while the failure is not permanent.
    const { url } = await pRetry(() => (calls++, store.put(KEY, bytes, 'image/png')), {
      retries: 3,
      minTimeout: 1,
      shouldRetry: ({ error }) => !(error instanceof StoreError && error.permanent),
    });
    expect(calls).toBe(2);
    expect(url).toBe(isPublic ? `${fake.url}/object/public/scenes/${KEY}` : null);
    expect(Buffer.compare(storedBytes()!, Buffer.from(bytes))).toBe(0);
    expect(routes('upload').length).toBe(2); // the lost one, then "exists"
    expect(routes('download').length).toBe(1); // read back once, to compare
  });

  it('the lost answer itself is a failure worth retrying', async () => {
    const store = storeFor();
    await store.init!();
    fake.script('upload:reset');
    const error = await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    expect(error.permanent).toBe(false);
    expect(storedBytes()).toBeDefined(); // stored all the same
  });

  it('the same bytes under another content type are not ours: permanent, and left as they are', async () => {
    const store = storeFor();
    await store.init!();
    await store.put(KEY, imageBytes(1), 'image/webp');
    const error = await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    expect(error).toMatchObject({ permanent: true, code: 'KeyAlreadyExists' });
    expect(error.message).toMatch(/another object is already stored under this key \(1500 bytes of image\/webp, not these 1500 bytes of image\/png\)/);
    expect(fake.objects.get(`scenes/${KEY}`)?.contentType).toBe('image/webp');
  });

  it('other bytes of the same length are not ours: permanent, and left as they are', async () => {
    const store = storeFor();
    await store.init!();
    await store.put(KEY, imageBytes(1), 'image/png');
    const other = imageBytes(1);
    other[other.length - 1] = other[other.length - 1]! ^ 1; // one bit, at the very end
    const error = await storeErrorOf(store.put(KEY, other, 'image/png'));
    expect(error).toMatchObject({ permanent: true, code: 'KeyAlreadyExists' });
    expect(Buffer.compare(storedBytes()!, Buffer.from(imageBytes(1)))).toBe(0);
  });

  it.each([
    ['download:500', 'InternalError'],
    ['download:503', 'DatabaseConnectionLimit'],
    ['download:truncate', undefined],
  ] as const)('when reading the object back fails (%s), the put fails, worth retrying; the retry succeeds', async (fault, code) => {
    const store = storeFor();
    await store.init!();
    fake.script('upload:reset', fault);
    await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    const error = await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    expect(error.permanent).toBe(false);
    if (code) expect(error.code).toBe(code);
    expect(error.message).toMatch(/it exists, but reading it back to compare failed/);
    expect(await store.put(KEY, imageBytes(1), 'image/png')).toEqual({ url: `${fake.url}/object/public/scenes/${KEY}` });
  });

  it('an object that is gone by the time it is read back is worth retrying, and the retry stores it', async () => {
    const store = storeFor();
    await store.init!();
    await store.put(KEY, imageBytes(1), 'image/png');
    fake.beforeNext('download', () => fake.objects.delete(`scenes/${KEY}`));
    const error = await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    expect(error).toMatchObject({ permanent: false, code: 'NoSuchKey' });
    await store.put(KEY, imageBytes(1), 'image/png');
    expect(Buffer.compare(storedBytes()!, Buffer.from(imageBytes(1)))).toBe(0);
  });
});

// Today's server answers its errors as HTTP 400 with the real status in the body; the same body
// with the real HTTP status (respectStatusCode, or a later release) must be read the same way.
describe.each([false, true])('failures read by the body, not the HTTP status (respectStatusCode: %s)', (respectStatusCode) => {
  beforeEach(() => startFake({ respectStatusCode, fileSizeLimit: 4000 }));

  it('an image larger than the bucket accepts (413) fails at once, permanently, saying why', async () => {
    const store = storeFor();
    await store.init!();
    fake.buckets.get('scenes')!.file_size_limit = 1000;
    const error = await storeErrorOf(store.put(KEY, imageBytes(1, 1001), 'image/png'));
    expect(error).toMatchObject({ permanent: true, code: 'EntityTooLarge' });
    expect(error.message).toMatch(/cannot store .*exceeded the maximum allowed size.*(statusCode |HTTP )413\b.*larger than the bucket or the server accepts/);
    expect(fake.objects.size).toBe(0);
  });

  it("an image larger than the server's own limit (413) fails permanently", async () => {
    const store = storeFor();
    await store.init!();
    const error = await storeErrorOf(store.put(KEY, imageBytes(1, 4001), 'image/png'));
    expect(error).toMatchObject({ permanent: true, code: 'EntityTooLarge' });
  });

  it('a content type the bucket does not allow (415) fails permanently, saying which', async () => {
    const store = storeFor();
    await store.init!();
    fake.buckets.get('scenes')!.allowed_mime_types = ['image/jpeg', 'image/webp'];
    const error = await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    expect(error).toMatchObject({ permanent: true, code: 'InvalidMimeType' });
    expect(error.message).toMatch(/mime type image\/png is not supported.*(statusCode |HTTP )415\b.*the bucket does not accept image\/png/);
    fake.buckets.get('scenes')!.allowed_mime_types = ['image/*'];
    await store.put(KEY, imageBytes(1), 'image/png');
  });

  it('a refused key (403) fails permanently, naming the setting and never the key', async () => {
    await storeFor().init!();
    const error = await storeErrorOf(storeFor({ serviceRoleKey: 'rotated-away' }).put(KEY, imageBytes(1), 'image/png'));
    expect(error).toMatchObject({ permanent: true, code: 'AccessDenied' });
    expect(error.message).toMatch(/invalid signature.*(statusCode |HTTP )403\b.*SUPABASE_SERVICE_ROLE_KEY/);
    expect(JSON.stringify({ m: error.message, c: error.cause })).not.toContain('rotated-away');
  });

  it.each([
    ['upload:500', 'InternalError'],
    ['upload:503', 'DatabaseConnectionLimit'], // HTTP 400, but statusCode "503": not the client's fault
    ['upload:429', 'SlowDown'],
    ['upload:reset', 'UND_ERR_SOCKET'],
  ] as const)('a server or network failure (%s) is worth retrying', async (fault, code) => {
    const store = storeFor();
    await store.init!();
    fake.script(fault);
    const error = await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    expect(error).toMatchObject({ permanent: false, code });
  });

  it('a missing bucket is created at start, whatever status its "not found" comes with', async () => {
    await storeFor().init!();
    expect(fake.buckets.has('scenes')).toBe(true);
    expect(routes('getBucket')).toHaveLength(1);
    expect(routes('createBucket')).toHaveLength(1);
  });

  it('two instances creating the bucket at once both start', async () => {
    await Promise.all([storeFor().init!(), storeFor().init!()]);
    expect(routes('createBucket')).toHaveLength(2);
    expect(fake.buckets.size).toBe(1);
  });
});

describe('failures with no Storage server behind them', () => {
  it('no server at all is worth retrying', async () => {
    await startFake();
    const store = storeFor();
    await fake.close();
    const error = await storeErrorOf(store.put(KEY, imageBytes(1), 'image/png'));
    expect(error).toMatchObject({ permanent: false, code: 'ECONNREFUSED' });
    fake = undefined!;
  });

  it("a gateway's own 404 (not a Storage error) means no Storage API there: init says so and creates nothing", async () => {
    // What a Kong gateway answers for a path it does not route.
    const requests: string[] = [];
    const gateway = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ message: 'no Route matched with those values' }));
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
      const store = createSupabaseStore({ url: origin, serviceRoleKey: 'k', bucket: 'scenes', public: true, signedUrlTtlS: 60 });
      const error = await storeErrorOf(store.init!());
      expect(error.permanent).toBe(true);
      expect(error.message).toMatch(/no Supabase Storage API at .*\/storage\/v1: .*no Route matched/);
      expect(requests).toEqual(['GET /storage/v1/bucket/scenes']);
    } finally {
      await new Promise((resolve) => gateway.close(resolve));
    }
  });

  it('an older server\'s "not found" with no error code (HTTP 400, statusCode "404") is a bucket to create', async () => {
    // A Storage error body without a code: read by its statusCode, not as "no Storage API here".
    const requests: string[] = [];
    const older = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const missing = req.method === 'GET';
      res.writeHead(missing ? 400 : 200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(missing ? { statusCode: '404', error: 'not_found', message: 'Bucket not found' } : { name: 'scenes' }));
    });
    await new Promise<void>((resolve) => older.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(older.address() as AddressInfo).port}`;
      await createSupabaseStore({ url: origin, serviceRoleKey: 'k', bucket: 'scenes', public: true, signedUrlTtlS: 60 }).init!();
      expect(requests).toEqual(['GET /storage/v1/bucket/scenes', 'POST /storage/v1/bucket']);
    } finally {
      await new Promise((resolve) => older.close(resolve));
    }
  });
});
