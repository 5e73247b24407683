import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalStore } from '../../src/storage/local.ts';
import { StoreError } from '../../src/storage/store.ts';
import { imageBytes, KEY } from './objects.ts';

describe('local store', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sceneworks-local-store-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('stores the bytes under the key and serves them at /files/<key>', async () => {
    const store = createLocalStore({ root: path.join(root, 'files'), publicBaseUrl: 'http://sceneworks.test/' });
    expect(await store.put(KEY, imageBytes(1), 'image/png')).toEqual({ url: `http://sceneworks.test/files/${KEY}` });
    expect(Buffer.compare(await readFile(path.join(root, 'files', KEY)), Buffer.from(imageBytes(1)))).toBe(0);
  });

  it.each(['projects/../../outside.png', 'projects//x.png', 'projects/a?b.png', ''])(
    'refuses the key %j: a permanent StoreError, and nothing written',
    async (key) => {
      const store = createLocalStore({ root: path.join(root, 'files'), publicBaseUrl: 'http://sceneworks.test' });
      const error = await store.put(key, imageBytes(1), 'image/png').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ permanent: true, code: 'InvalidKey', message: `invalid storage key: ${key}` });
      expect(await readdir(root)).toEqual([]);
    },
  );

  it('a put repeated after a write that failed half way, or whose answer was lost, succeeds; other bytes under the key are refused', async () => {
    const store = createLocalStore({ root: path.join(root, 'files'), publicBaseUrl: 'http://sceneworks.test' });
    const file = path.join(root, 'files', KEY);
    // A put killed half way left its partial file: the retry starts over.
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.partial`, Buffer.from(imageBytes(1)).subarray(0, 10));
    await store.put(KEY, imageBytes(1), 'image/png');
    // The same put again (its first answer lost): the object is there, with these bytes.
    expect(await store.put(KEY, imageBytes(1), 'image/png')).toEqual({ url: `http://sceneworks.test/files/${KEY}` });
    const error = await store.put(KEY, imageBytes(2), 'image/png').catch((e: unknown) => e);
    expect(error).toMatchObject({ permanent: true, code: 'KeyAlreadyExists' });
    expect(Buffer.compare(await readFile(file), Buffer.from(imageBytes(1)))).toBe(0);
    expect(await readdir(path.dirname(file))).toEqual([path.basename(file)]);
    // Removing the key removes a partial file left beside it too.
    await writeFile(`${file}.partial`, 'x');
    await store.remove([KEY]);
    expect(await readdir(path.dirname(file))).toEqual([]);
  });

  it('never serves a partial file', async () => {
    const store = createLocalStore({ root: path.join(root, 'files'), publicBaseUrl: 'http://sceneworks.test' });
    await mkdir(path.dirname(path.join(root, 'files', KEY)), { recursive: true });
    await writeFile(path.join(root, 'files', `${KEY}.partial`), 'x');
    expect(await store.open(`${KEY}.partial`)).toBeUndefined();
  });
});
