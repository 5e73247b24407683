import { StorageClient, type StorageError } from '@supabase/storage-js';
import type { ObjectStore } from './store.ts';

export interface SupabaseStoreOptions {
  /** A project URL or the Storage API's own URL: see storageApiUrl. */
  url: string;
  serviceRoleKey: string;
  bucket: string;
  /** Public: put returns a permanent URL. Private: put returns null and reads sign URLs. */
  public: boolean;
  signedUrlTtlS: number;
  /** Gives up on any one Storage request after this long (default 60 s): a hung server fails a put, never stalls it. */
  timeoutMs?: number;
}

const STORAGE_PATH = '/storage/v1';
/** Keys are never reused, so an object never changes: caches may keep it a year. */
const CACHE_CONTROL_S = String(365 * 24 * 3600);
/** The Storage API deletes at most 1,000 paths per request, and looks paths up 1,000 at a time. */
const BATCH = 1000;
/** The same key shape as the local store: every character means itself in a URL path. */
const SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,200}$/;

/**
 * Where the Storage API lives, from the URL users configure. The rule is on the URL's path only:
 * - no path: a Supabase project URL (https://abc.supabase.co, the CLI's http://127.0.0.1:54321,
 *   a self-hosted gateway); its Storage API is under /storage/v1, which is appended;
 * - any path: the Storage API itself, used as is: https://abc.supabase.co/storage/v1, or a bare
 *   storage server mounted under a path (http://proxy/storage).
 * A bare storage server at the root of its host cannot be told from a project URL and is read as
 * one; init then fails on the server's 404 with a hint, and creates nothing.
 */
export function storageApiUrl(url: string): string {
  const u = new URL(url);
  if (u.search || u.hash) throw new Error(`Supabase URL must not have a query or a fragment: ${u.origin}${u.pathname}`);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.origin}${path === '' ? STORAGE_PATH : path}`;
}

/** Objects in one Supabase Storage bucket, through the official client (built once). */
export function createSupabaseStore(options: SupabaseStoreOptions): ObjectStore {
  const { bucket, signedUrlTtlS } = options;
  const isPublic = options.public;
  const timeoutMs = options.timeoutMs ?? 60_000;
  // The client puts the bucket in URL paths unencoded: only characters that mean themselves there.
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(bucket)) throw new Error(`invalid bucket name: ${bucket}`);
  if (!Number.isInteger(signedUrlTtlS) || signedUrlTtlS < 1) throw new Error(`signedUrlTtlS must be a positive integer, not ${signedUrlTtlS}`);
  const base = storageApiUrl(options.url);
  const timedFetch: typeof fetch = (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    return fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
  };
  // The key lives only inside the client's headers: never in a message, never on the store.
  const client = new StorageClient(base, { apikey: options.serviceRoleKey, Authorization: `Bearer ${options.serviceRoleKey}` }, timedFetch);
  const files = client.from(bucket);
  const where = `bucket "${bucket}" at ${base}`;

  /** The bucket, or undefined when the server says it does not exist. */
  async function readBucket() {
    const { data, error } = await client.getBucket(bucket);
    if (!error) return data;
    // A missing bucket is HTTP 400 with statusCode "404"; an HTTP 404 means no Storage API answered.
    if (error.status === 404) {
      throw failure(
        `no Supabase Storage API at ${base}: a URL without a path is read as a project URL (${STORAGE_PATH} is appended); give a bare storage server by a URL with its path`,
        error,
      );
    }
    if (error.statusCode === '404' || codeOf(error) === 'NoSuchBucket') return undefined;
    throw failure(`cannot read ${where}`, error);
  }

  return {
    name: 'supabase',
    signedUrlTtlS,
    async init() {
      let found = await readBucket();
      if (!found) {
        const { error } = await client.createBucket(bucket, { public: isPublic });
        if (!error) return;
        // Another instance starting at the same moment may have created it first.
        if (error.statusCode !== '409') throw failure(`cannot create ${where}`, error);
        found = await readBucket();
        if (!found) throw failure(`cannot create ${where}`, error);
      }
      if (found.public !== isPublic) {
        const is = found.public ? 'public' : 'private';
        throw new Error(
          `Supabase Storage ${where} is ${is}, but the configuration says ${isPublic ? 'public' : 'private'}: change the bucket or the configuration (STORAGE_PUBLIC)`,
        );
      }
    },
    async put(key, bytes, contentType) {
      assertKey(key);
      if (!contentType) throw new Error(`no content type for ${key}`);
      // Explicit content type: the client would label raw bytes text/plain. upsert false: keys are
      // never reused, so an existing object means a bug, and must fail rather than be replaced.
      const { error } = await files.upload(key, bytes, { contentType, upsert: false, cacheControl: CACHE_CONTROL_S });
      if (error) throw failure(`cannot store ${key} in ${where}`, error);
      return { url: isPublic ? files.getPublicUrl(key).data.publicUrl : null };
    },
    async remove(keys) {
      // A key of another shape was never stored here: nothing to remove.
      const valid = [...new Set(keys)].filter(isKey);
      for (const batch of batches(valid)) {
        // Paths that do not exist are simply absent from the answer: not an error.
        const { error } = await files.remove(batch);
        if (error) throw failure(`cannot remove ${batch.length} objects from ${where}`, error);
      }
    },
    async signUrls(keys) {
      const signed = new Map<string, string>();
      const valid = [...new Set(keys)].filter(isKey);
      await Promise.all(
        batches(valid).map(async (batch) => {
          const { data, error } = await files.createSignedUrls(batch, signedUrlTtlS);
          if (error) throw failure(`cannot sign ${batch.length} URLs in ${where}`, error);
          // A path the server could not sign (missing object) comes back with an error: left out.
          for (const entry of data) if (!entry.error && entry.path && entry.signedUrl) signed.set(entry.path, entry.signedUrl);
        }),
      );
      return signed;
    },
  };
}

function isKey(key: string): boolean {
  return key.split('/').every((s) => SEGMENT.test(s));
}

function assertKey(key: string) {
  if (!isKey(key)) throw new Error(`invalid storage key: ${key}`);
}

function batches<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

function codeOf(error: StorageError): string | undefined {
  return 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** The vendor error as cause; in the message, the server's own words, or why no answer came. */
function failure(message: string, error: StorageError): Error {
  let detail = '';
  if (error.status) {
    const statusCode = error.statusCode && error.statusCode !== String(error.status) ? `, statusCode ${error.statusCode}` : '';
    detail = ` (HTTP ${error.status}${statusCode})`;
  } else if ('originalError' in error) {
    // The client says only "fetch failed"; the reason (ECONNREFUSED, timeout, ...) is beneath.
    const original = error.originalError as { cause?: { code?: string; message?: string } } | undefined;
    const reason = original?.cause?.code ?? original?.cause?.message;
    if (reason) detail = ` (${reason})`;
  }
  return new Error(`${message}: ${error.message}${detail}`, { cause: error });
}
