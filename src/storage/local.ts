import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ObjectStore } from './store.ts';

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
      if (!file) throw new Error(`invalid storage key: ${key}`);
      await mkdir(path.dirname(file), { recursive: true });
      // Write then rename: a reader sees the whole file or none of it.
      const tmp = `${file}.${randomUUID()}.tmp`;
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
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
