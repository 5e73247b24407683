import { createHash } from 'node:crypto';
import { link, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { StoreError, type ObjectStore } from './store.ts';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

/** A put's bytes are written here first; never served (no image extension), removed with its key. */
const PARTIAL = '.partial';

/** Each segment: letters, digits, dot, dash, underscore; never '.' or '..'. */
const SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,200}$/;

export interface LocalFile {
  path: string;
  size: number;
  contentType: string;
  etag: string;
}

export interface LocalObjectStore extends ObjectStore {
  /** Looks a key up for GET /files; undefined for a bad or missing key. */
  open(key: string): Promise<LocalFile | undefined>;
}

/** Files under `root`, served by this service at `${publicBaseUrl}/files/<key>`. */
export function createLocalStore(options: { root: string; publicBaseUrl: string }): LocalObjectStore {
  const root = path.resolve(options.root);
  const base = options.publicBaseUrl.replace(/\/+$/, '');
  /** Directories known to exist, so a put costs no mkdir; bounded, it is only a cache. */
  const knownDirs = new Set<string>();
  async function ensureDir(dir: string) {
    await mkdir(dir, { recursive: true });
    if (knownDirs.size >= 10_000) knownDirs.clear();
    knownDirs.add(dir);
  }

  function resolve(key: string): string | undefined {
    const segments = key.split('/');
    if (!segments.every((s) => SEGMENT.test(s))) return undefined;
    const full = path.resolve(root, ...segments);
    // Belt and braces: whatever the key, the file is inside root.
    return full.startsWith(root + path.sep) ? full : undefined;
  }

  return {
    name: 'local',
    async put(key, bytes, _contentType) {
      const file = resolve(key);
      if (!file) throw new StoreError(`invalid storage key: ${key}`, { permanent: true, code: 'InvalidKey' });
      const dir = path.dirname(file);
      if (!knownDirs.has(dir)) await ensureDir(dir);
      // Written in full to <key>.partial, then hard-linked to the key: the key's name only ever
      // holds complete bytes, and link() is exclusive, so an object is never replaced. A retry
      // of the same put (its answer lost, or its write failed half way) starts the partial
      // file over and succeeds; an identical object already under the key counts as stored.
      const partial = `${file}${PARTIAL}`;
      try {
        const handle = await open(partial, 'w').catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
          await ensureDir(dir); // removed behind our back
          return open(partial, 'w');
        });
        try {
          await handle.writeFile(bytes);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await link(partial, file).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
          const existing = await readFile(file);
          if (!existing.equals(bytes)) {
            throw new StoreError(`other bytes are already stored under ${key}`, { permanent: true, code: 'KeyAlreadyExists' });
          }
        });
      } catch (err) {
        if (err instanceof StoreError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        throw new StoreError(`cannot store ${key}: ${(err as Error).message}`, { permanent: false, code, cause: err });
      } finally {
        await rm(partial, { force: true }).catch(() => {});
      }
      return { url: `${base}/files/${key}` };
    },
    async remove(keys) {
      await Promise.all(
        keys.map(async (key) => {
          const file = resolve(key);
          // The partial file too: a put killed half way leaves one.
          if (file) await Promise.all([rm(file, { force: true }), rm(`${file}${PARTIAL}`, { force: true })]);
        }),
      );
    },
    async open(key) {
      const file = resolve(key);
      if (!file) return undefined;
      const contentType = CONTENT_TYPES[path.extname(file).toLowerCase()];
      if (!contentType) return undefined;
      try {
        const info = await stat(file);
        if (!info.isFile()) return undefined;
        // Keys are never reused, so key + size identifies the content.
        const etag = `"${createHash('sha256').update(`${key}:${info.size}`).digest('base64url').slice(0, 27)}"`;
        return { path: file, size: info.size, contentType, etag };
      } catch {
        return undefined;
      }
    },
  };
}
