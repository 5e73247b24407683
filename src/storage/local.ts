import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { link, mkdir, open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
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

/** How much of a file one read of a get's body takes. */
const READ_CHUNK = 64 * 1024;

/** Each segment: letters, digits, dot, dash, underscore; never '.' or '..'. */
const SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,200}$/;

export interface LocalFile {
  path: string;
  size: number;
  contentType: string;
  etag: string;
}

/** What GET /files may do with a signed URL: serve it until `expiresAt` (Unix seconds), or refuse it. */
export type SignedUrlAccess = { granted: true; expiresAt: number } | { granted: false; reason: string };

export interface LocalObjectStore extends ObjectStore {
  /** Looks a key up for GET /files; undefined for a bad or missing key. */
  open(key: string): Promise<LocalFile | undefined>;
  /**
   * Private store only (absent when public): whether the `expires` and `signature` query values
   * of a request for `key` make a valid, unexpired signed URL at `nowS` (Unix seconds).
   */
  checkSignedUrl?(key: string, expires: string | undefined, signature: string | undefined, nowS: number): SignedUrlAccess;
}

export interface SignedUrlOptions {
  /** How long a signed URL lives (SIGNED_URL_TTL_S). */
  ttlS: number;
  /** FILES_URL_SECRET. Without it, the secret kept in `secretFile`, made by init() the first time. */
  secret?: string | undefined;
  /** Where the generated secret is kept; never under the store's root. */
  secretFile: string;
}

const EXPIRES = /^\d{1,12}$/;
/** base64url of an HMAC-SHA256: 32 bytes, 43 characters. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

/** The signature of a URL for `key` valid until `expires` (Unix seconds). Keys never hold a newline. */
export function fileUrlSignature(secret: string, key: string, expires: number): string {
  return createHmac('sha256', secret).update(`${key}\n${expires}`).digest('base64url');
}

/**
 * When a URL signed at `nowS` expires. Aligned to steps of a quarter of the TTL, so reads within a
 * step give the same URL (browsers keep their cached copy of the image) and every URL handed out
 * still lives at least three quarters of the TTL.
 */
export function signedUrlExpiry(nowS: number, ttlS: number): number {
  const step = Math.max(1, Math.floor(ttlS / 4));
  return Math.floor((nowS + ttlS) / step) * step;
}

/**
 * The secret kept in `file`: 32 random bytes as base64url text, made once and reused across
 * restarts (so URLs already handed out stay valid), readable by this user only. The text itself
 * is the key, as FILES_URL_SECRET is: copying it there gives other processes the same signatures.
 * Concurrent first starts agree: the file appears complete (link of a written file) or not at all.
 */
export async function loadOrCreateUrlSecret(file: string): Promise<string> {
  const read = async () => {
    const secret = (await readFile(file, 'utf8')).trim();
    if (secret.length < 32) {
      throw new Error(`${file} does not hold a URL signing secret (${secret.length} characters, at least 32 needed); remove it to make a new one, or set FILES_URL_SECRET`);
    }
    return secret;
  };
  try {
    return await read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${randomUUID()}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(`${randomBytes(32).toString('base64url')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err; // another process made it first: theirs is the secret
    });
  } finally {
    await rm(temp, { force: true });
  }
  return read();
}

/**
 * Files under `root`, served by this service at `${publicBaseUrl}/files/<key>`. With `signed`,
 * the store is private: put returns no URL, reads get URLs signed for a while (signUrls), and
 * GET /files serves only those (checkSignedUrl).
 */
export function createLocalStore(options: { root: string; publicBaseUrl: string; signed?: SignedUrlOptions | undefined }): LocalObjectStore {
  const root = path.resolve(options.root);
  const base = options.publicBaseUrl.replace(/\/+$/, '');
  const signed = options.signed;
  if (signed && (!Number.isInteger(signed.ttlS) || signed.ttlS < 1)) throw new Error(`signed URL TTL must be a positive integer, not ${signed.ttlS}`);
  if (signed?.secret !== undefined && signed.secret.length < 32) throw new Error('the URL signing secret must have at least 32 characters');
  let secret = signed?.secret;
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

  function urlSecret(): string {
    if (secret === undefined) throw new Error('the local store signs URLs only after init()');
    return secret;
  }

  const store: LocalObjectStore = {
    name: 'local',
    async init() {
      if (signed && secret === undefined) secret = await loadOrCreateUrlSecret(signed.secretFile);
    },
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
      return { url: signed ? null : `${base}/files/${key}` };
    },
    async removePrefix(prefix) {
      // A folder of keys: every segment a key segment, so it resolves inside root like a key does.
      const dir = prefix.endsWith('/') ? resolve(prefix.slice(0, -1)) : undefined;
      if (!dir) throw new StoreError(`invalid storage prefix: ${prefix}`, { permanent: true, code: 'InvalidKey' });
      await rm(dir, { recursive: true, force: true });
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
    async get(key) {
      const file = resolve(key);
      if (!file) return undefined;
      let handle: FileHandle;
      try {
        handle = await open(file, 'r');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
        throw new StoreError(`cannot read ${key}: ${(err as Error).message}`, { permanent: false, code, cause: err });
      }
      // Opened first, then looked at: a remove in between cannot give a size of one file and the bytes of none.
      try {
        const info = await handle.stat();
        if (!info.isFile()) {
          await handle.close();
          return undefined;
        }
        const contentType = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
        return { body: fileBody(handle, key), contentType, size: info.size };
      } catch (err) {
        await handle.close().catch(() => {});
        throw new StoreError(`cannot read ${key}: ${(err as Error).message}`, { permanent: false, code: (err as NodeJS.ErrnoException).code, cause: err });
      }
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
  if (!signed) return store;

  return Object.assign(store, {
    signedUrlTtlS: signed.ttlS,
    private: true,
    async signUrls(keys: readonly string[]) {
      const key = urlSecret();
      const expires = signedUrlExpiry(Math.floor(Date.now() / 1000), signed.ttlS);
      const urls = new Map<string, string>();
      // A key that could never be served is left out, as the contract of signUrls says.
      for (const k of keys) if (resolve(k)) urls.set(k, `${base}/files/${k}?expires=${expires}&signature=${fileUrlSignature(key, k, expires)}`);
      return urls;
    },
    checkSignedUrl(key: string, expires: string | undefined, signature: string | undefined, nowS: number): SignedUrlAccess {
      if (expires === undefined || signature === undefined) return { granted: false, reason: 'this file needs a signed URL (expires and signature)' };
      if (!EXPIRES.test(expires) || !SIGNATURE.test(signature)) return { granted: false, reason: 'malformed signed URL' };
      const expected = Buffer.from(fileUrlSignature(urlSecret(), key, Number(expires)));
      // Constant time: how much of a guessed signature is right must not show in the answer's timing.
      if (!timingSafeEqual(expected, Buffer.from(signature))) return { granted: false, reason: 'invalid signature' };
      if (Number(expires) <= nowS) return { granted: false, reason: 'this signed URL has expired; fetch the project again for a fresh one' };
      return { granted: true, expiresAt: Number(expires) };
    },
  });
}

/**
 * A file's bytes, read one chunk each time the consumer asks for one (highWaterMark 0: nothing is
 * read ahead), so a slow consumer holds at most one chunk. The file is closed at its end, on an
 * error and on cancel, whichever comes first.
 */
function fileBody(handle: FileHandle, key: string): ReadableStream<Uint8Array> {
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close().catch(() => {});
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const buffer = new Uint8Array(READ_CHUNK);
          const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK, null);
          if (bytesRead === 0) {
            await close();
            controller.close();
          } else {
            controller.enqueue(buffer.subarray(0, bytesRead));
          }
        } catch (err) {
          await close();
          const code = (err as NodeJS.ErrnoException).code;
          controller.error(new StoreError(`reading ${key} failed: ${(err as Error).message}`, { permanent: false, code, cause: err }));
        }
      },
      cancel: close,
    },
    { highWaterMark: 0 },
  );
}
