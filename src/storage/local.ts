import { createHash } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { StoreError, type ObjectStore } from './store.ts';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};

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
      // Straight to the final name, exclusively: keys are never reused, and no client can
      // learn a key before its row commits, which happens only after this returns. A crash
      // mid-write leaves a file under a key that no row will ever reference.
      const handle = await open(file, 'wx').catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        await ensureDir(dir); // removed behind our back
        return open(file, 'wx');
      });
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return { url: `${base}/files/${key}` };
    },
    async remove(keys) {
      await Promise.all(
        keys.map(async (key) => {
          const file = resolve(key);
          if (file) await rm(file, { force: true });
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
