import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalStore } from '../../src/storage/local.ts';
import { StoreError, type StoredObject } from '../../src/storage/store.ts';
import { createSupabaseStore, type SupabaseStoreOptions } from '../../src/storage/supabase.ts';
import { startFakeSupabaseStorage, type FakeSupabaseStorage } from '../fakes/supabase-storage.ts';
import { imageBytes, KEY } from './objects.ts';

/** Reads a body to its end, counting the chunks it came in. */
async function readAll(object: StoredObject): Promise<{ bytes: Buffer; chunks: number }> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of object.body) chunks.push(chunk);
  return { bytes: Buffer.concat(chunks), chunks: chunks.length };
}

/** Files this process has open (Linux): a body must give its file back however it ends. */
const openFiles = async () => (await readdir('/proc/self/fd')).length;

async function eventually(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never happened: ${what}`);
}

describe('local store get', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sceneworks-local-get-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));
  const storeIn = (signed = false) =>
    createLocalStore({
      root: path.join(root, 'files'),
      publicBaseUrl: 'http://sceneworks.test',
      signed: signed ? { ttlS: 600, secret: 'x'.repeat(32), secretFile: path.join(root, 'key') } : undefined,
    });

  it.each([false, true])('streams the stored bytes with their type and size (private: %s)', async (signed) => {
    const store = storeIn(signed);
    await store.init!();
    const bytes = randomBytes(300_000); // several chunks
    await store.put(KEY, bytes, 'image/png');
    const object = (await store.get(KEY))!;
    expect(object.contentType).toBe('image/png');
    expect(object.size).toBe(bytes.length);
    const read = await readAll(object);
    expect(read.bytes.equals(bytes)).toBe(true);
    expect(read.chunks).toBeGreaterThan(1);
  });

  it('no object, a key of another shape, a folder, a half-written put: undefined', async () => {
    const store = storeIn();
    await store.put(KEY, imageBytes(1), 'image/png');
    expect(await store.get('projects/p1/scene-0/other.png')).toBeUndefined();
    expect(await store.get('projects/../../etc/passwd')).toBeUndefined();
    expect(await store.get('projects/p1')).toBeUndefined();
    await writeFile(path.join(root, 'files', 'projects', 'p1', 'half.png.partial'), 'x');
    expect(await store.get('projects/p1/half.png')).toBeUndefined();
  });

  it('gives the file back when read to the end and when cancelled half way', async () => {
    const store = storeIn();
    await store.put(KEY, randomBytes(1_000_000), 'image/png');
    const before = await openFiles();
    await readAll((await store.get(KEY))!);
    expect(await openFiles()).toBe(before);

    const object = (await store.get(KEY))!;
    const reader = object.body.getReader();
    const first = await reader.read();
    expect(first.value!.byteLength).toBeLessThan(1_000_000); // one chunk, not the file
    expect(await openFiles()).toBe(before + 1);
    await reader.cancel();
    await eventually(async () => (await openFiles()) === before, 'the file closed after cancel');
  });

  it('a type it does not know is application/octet-stream', async () => {
    const store = storeIn();
    await mkdir(path.join(root, 'files', 'projects'), { recursive: true });
    await writeFile(path.join(root, 'files', 'projects', 'x.bin'), 'abc');
    const object = (await store.get('projects/x.bin'))!;
    expect(object.contentType).toBe('application/octet-stream');
    expect((await readAll(object)).bytes.toString()).toBe('abc');
  });
});

describe('Supabase store get, against the fake Storage API', () => {
  let fake: FakeSupabaseStorage;
  beforeEach(async () => {
    fake = await startFakeSupabaseStorage({ prefix: '/storage/v1' });
  });
  afterEach(() => fake.close());
  const storeFor = (over: Partial<SupabaseStoreOptions> = {}) =>
    createSupabaseStore({ url: fake.origin, serviceRoleKey: fake.serviceRoleKey, bucket: 'scenes', public: false, signedUrlTtlS: 600, ...over });

  it.each([false, true])('streams the object through the authenticated object route, never a signed URL (public: %s)', async (isPublic) => {
    const store = storeFor({ public: isPublic });
    await store.init!();
    const bytes = randomBytes(200_000);
    await store.put(KEY, bytes, 'image/webp');
    const object = (await store.get(KEY))!;
    expect(object).toMatchObject({ contentType: 'image/webp', size: bytes.length });
    expect((await readAll(object)).bytes.equals(bytes)).toBe(true);
    const reads = fake.requests.filter((r) => r.route === 'download');
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({ method: 'GET', path: `/object/scenes/${KEY}` });
    expect(reads[0]!.headers.authorization).toBe(`Bearer ${fake.serviceRoleKey}`);
    expect(fake.requests.some((r) => r.route === 'sign' || r.route === 'signMany' || r.route === 'signedDownload')).toBe(false);
  });

  it('no such object, or a key of another shape: undefined; a missing bucket is an error, not a missing object', async () => {
    const store = storeFor();
    await store.init!();
    expect(await store.get('projects/none.png')).toBeUndefined();
    expect(await store.get('projects/a b.png')).toBeUndefined();
    fake.buckets.delete('scenes');
    const error = await store.get('projects/none.png').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ permanent: true, code: 'NoSuchBucket' });
  });

  it('a failing server is a StoreError that may pass (500, 503, 429)', async () => {
    const store = storeFor();
    await store.init!();
    await store.put(KEY, imageBytes(1), 'image/png');
    fake.script('download:500', 'download:503', 'download:429');
    for (const code of ['InternalError', 'DatabaseConnectionLimit', 'SlowDown']) {
      const error = await store.get(KEY).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ permanent: false, code });
      expect((error as Error).message).not.toContain(fake.serviceRoleKey);
    }
    expect((await readAll((await store.get(KEY))!)).bytes.equals(Buffer.from(imageBytes(1)))).toBe(true);
  });

  it('a server that does not answer fails the get after the timeout', async () => {
    const store = storeFor({ timeoutMs: 300 });
    await store.init!();
    await store.put(KEY, imageBytes(1), 'image/png');
    fake.script('download:hang');
    const error = await store.get(KEY).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ permanent: false, code: 'TimeoutError' });
  });

  it('streams: the get answers at once, and an answer that breaks off errors the body with a StoreError', async () => {
    const store = storeFor();
    await store.init!();
    const bytes = randomBytes(2_000_000);
    await store.put(KEY, bytes, 'image/png');
    fake.script('download:truncate');
    // Buffered, the get itself would fail; streamed, it answers and the bytes that came are read.
    const object = (await store.get(KEY))!;
    const reader = object.body.getReader();
    let received = 0;
    const error = await (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return undefined;
        received += value.byteLength;
      }
    })().catch((e: unknown) => e);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(bytes.length);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ permanent: false });
    expect((error as Error).message).toMatch(/broke off/);
  });
});
