import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
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
});
