import { StorageApiError, StorageClient, StorageUnknownError, type StorageError } from '@supabase/storage-js';
import { withReadTimeout } from './read-timeout.ts';
import { StoreError, type ObjectStore } from './store.ts';

/** Entries per page of a folder listing. */
const LIST_PAGE = 1000;

export interface SupabaseStoreOptions {
  /** A Supabase project URL (or a Storage API URL with a path): see storageApiUrl. Give this or storageUrl, not both. */
  url?: string;
  /** The Storage API's own URL, used as is (only trailing slashes dropped): a bare storage server at the root of its host. */
  storageUrl?: string;
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
/** 4xx meanings that say "not now" rather than "never": timeout, conflict, locked, too early, slow down. */
const TRANSIENT_4XX = new Set([408, 409, 423, 425, 429]);

/**
 * Where the Storage API lives, from the project URL users configure. The rule is on the URL's path only:
 * - no path: a Supabase project URL (https://abc.supabase.co, the CLI's http://127.0.0.1:54321,
 *   a self-hosted gateway); its Storage API is under /storage/v1, which is appended;
 * - any path: the Storage API itself, used as is: https://abc.supabase.co/storage/v1, or a bare
 *   storage server mounted under a path (http://proxy/storage).
 * A bare storage server at the root of its host cannot be told from a project URL: give it as
 * `storageUrl` instead (see exactStorageUrl).
 */
export function storageApiUrl(url: string): string {
  const { origin, path } = parseUrl(url, 'Supabase URL');
  return `${origin}${path === '' ? STORAGE_PATH : path}`;
}

/** The Storage API's own URL, as given: nothing appended, only trailing slashes dropped. */
export function exactStorageUrl(url: string): string {
  const { origin, path } = parseUrl(url, 'Supabase Storage URL');
  return `${origin}${path}`;
}

function parseUrl(url: string, what: string): { origin: string; path: string } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${what} must be http or https: ${u.protocol}`);
  if (u.search || u.hash) throw new Error(`${what} must not have a query or a fragment: ${u.origin}${u.pathname}`);
  return { origin: u.origin, path: u.pathname.replace(/\/+$/, '') };
}

/** Objects in one Supabase Storage bucket, through the official client (built once). */
export function createSupabaseStore(options: SupabaseStoreOptions): ObjectStore {
  const { bucket, signedUrlTtlS } = options;
  const isPublic = options.public;
  const timeoutMs = options.timeoutMs ?? 60_000;
  // The client puts the bucket in URL paths unencoded: only characters that mean themselves there.
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(bucket)) throw new Error(`invalid bucket name: ${bucket}`);
  if (!Number.isInteger(signedUrlTtlS) || signedUrlTtlS < 1) throw new Error(`signedUrlTtlS must be a positive integer, not ${signedUrlTtlS}`);
  if ((options.url === undefined) === (options.storageUrl === undefined)) {
    throw new Error('give the Supabase Storage API either as a project URL (url) or as its own URL (storageUrl), exactly one of them');
  }
  const base = options.storageUrl !== undefined ? exactStorageUrl(options.storageUrl) : storageApiUrl(options.url!);
  const timedFetch: typeof fetch = (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    return fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout });
  };
  // The key lives only inside these headers: never in a message, never on the store.
  const authHeaders = { apikey: options.serviceRoleKey, Authorization: `Bearer ${options.serviceRoleKey}` };
  const client = new StorageClient(base, authHeaders, timedFetch);
  const files = client.from(bucket);
  const where = `bucket "${bucket}" at ${base}`;

  /** The bucket, or undefined when the server says it does not exist. */
  async function readBucket() {
    const { data, error } = await client.getBucket(bucket);
    if (!error) return data;
    const answer = answerOf(error);
    // The Storage server's own words first: today a missing bucket is HTTP 400 with statusCode
    // "404", a later release may make it a real 404; either way it is a bucket to create.
    if (answer.code === 'NoSuchBucket' || (answer.fromStorage && answer.meaning === 404)) return undefined;
    // A 404 in no Storage error's words: no Storage API answers at this URL.
    if (answer.status === 404) {
      const hint =
        options.storageUrl !== undefined
          ? 'the Storage API URL is used as is'
          : `a URL without a path is read as a project URL (${STORAGE_PATH} is appended); give a bare storage server at the root of its host as the Storage API URL (SUPABASE_STORAGE_URL)`;
      throw failure(`no Supabase Storage API at ${base}: ${hint}`, error);
    }
    throw failure(`cannot read ${where}`, error);
  }

  /**
   * After "the key exists": the object is ours when it holds exactly these bytes and this
   * content type (an earlier put of this key stored it, and its answer was lost). Anything else
   * is another object, which is never replaced.
   */
  async function assertStoredIsOurs(key: string, bytes: Uint8Array, contentType: string, exists: StorageError) {
    let stored: Blob | null;
    try {
      const { data, error } = await files.download(key);
      // Missing after "exists": removed or not yet committed in between; looking again may tell.
      if (error) {
        throw failure(`cannot store ${key} in ${where}: it exists, but reading it back to compare failed`, error, { notFoundIsTransient: true });
      }
      stored = data;
    } catch (err) {
      if (err instanceof StoreError) throw err;
      // The body broke off: the client throws this instead of returning it.
      throw new StoreError(`cannot store ${key} in ${where}: it exists, but reading it back to compare failed: ${(err as Error).message}`, {
        permanent: false,
        code: networkCode(err),
        cause: err,
      });
    }
    const got = Buffer.from(await stored.arrayBuffer());
    const sameBytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(got);
    const sameType = essence(stored.type) === essence(contentType);
    if (sameBytes && sameType) return;
    throw new StoreError(
      `cannot store ${key} in ${where}: another object is already stored under this key (${got.length} bytes of ${stored.type || 'no type'}, ` +
        `not these ${bytes.byteLength} bytes of ${contentType}); keys are never reused, so it is left as it is`,
      { permanent: true, code: 'KeyAlreadyExists', cause: exists },
    );
  }

  return {
    name: 'supabase',
    signedUrlTtlS,
    private: !isPublic,
    async init() {
      let found = await readBucket();
      if (!found) {
        const { error } = await client.createBucket(bucket, { public: isPublic });
        if (!error) return;
        // Another instance starting at the same moment may have created it first.
        const answer = answerOf(error);
        if (answer.code !== 'BucketAlreadyExists' && answer.meaning !== 409) throw failure(`cannot create ${where}`, error);
        found = await readBucket();
        if (!found) throw failure(`cannot create ${where}`, error);
      }
      if (found.public !== isPublic) {
        const is = found.public ? 'public' : 'private';
        throw new StoreError(
          `Supabase Storage ${where} is ${is}, but the configuration says ${isPublic ? 'public' : 'private'}: change the bucket or the configuration (STORAGE_PUBLIC)`,
          { permanent: true },
        );
      }
    },
    async put(key, bytes, contentType) {
      if (!isKey(key)) throw new StoreError(`invalid storage key: ${key}`, { permanent: true, code: 'InvalidKey' });
      if (!contentType) throw new StoreError(`no content type for ${key}`, { permanent: true });
      // Explicit content type: the client would label raw bytes text/plain. upsert false: an
      // object under this key is never replaced; a retry of a put whose answer was lost finds it
      // and accepts it only when it is byte for byte ours (assertStoredIsOurs).
      const { error } = await files.upload(key, bytes, { contentType, upsert: false, cacheControl: CACHE_CONTROL_S });
      if (error) {
        const answer = answerOf(error);
        const exists = answer.code === 'KeyAlreadyExists' || (answer.code === undefined && answer.fromStorage && answer.meaning === 409);
        if (!exists) throw failure(`cannot store ${key} in ${where}`, error, { contentType });
        await assertStoredIsOurs(key, bytes, contentType, error);
      }
      return { url: isPublic ? files.getPublicUrl(key).data.publicUrl : null };
    },
    async get(key) {
      // A key of another shape was never stored here.
      if (!isKey(key)) return undefined;
      // Not the client's download(): it answers a Blob, the whole object in memory. The same route
      // (GET /object/<bucket>/<key>, authenticated with the service key), read as a stream.
      // The store's timeout holds for the answer's head and then for each read of its body
      // (withReadTimeout): a hung server fails the get, a slow reader does not.
      const request = new AbortController();
      const timer = setTimeout(() => request.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
      const unreadable = `cannot read ${key} from ${where}`;
      let res: Response;
      try {
        res = await fetch(`${base}/object/${bucket}/${key}`, { headers: authHeaders, signal: request.signal });
        if (!res.ok) {
          const error = await apiErrorOf(res);
          const answer = answerOf(error);
          // No such object; a missing bucket is a configuration problem, not a missing object.
          if (answer.code === 'NoSuchKey' || (answer.code === undefined && answer.fromStorage && answer.meaning === 404)) return undefined;
          throw failure(unreadable, error);
        }
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw failure(unreadable, new StorageUnknownError((err as Error).message, err));
      } finally {
        clearTimeout(timer);
      }
      // A compressed answer is decoded on the way: its Content-Length is not the object's size.
      const length = res.headers.get('content-encoding') ? null : res.headers.get('content-length');
      const body = withReadTimeout(res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() }), {
        timeoutMs,
        onTimeout: (reason) => request.abort(reason),
        mapError: (err) =>
          new StoreError(`${unreadable}: the answer broke off: ${(err as Error).message}`, { permanent: false, code: networkCode(err), cause: err }),
      });
      return {
        body,
        contentType: res.headers.get('content-type') ?? 'application/octet-stream',
        ...(length !== null && /^\d+$/.test(length) ? { size: Number(length) } : {}),
      };
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
    async removePrefix(prefix) {
      // A folder of keys (`projects/<id>/`): every object under it, at any depth. The API lists one
      // level at a time (folders come back with a null id), so folders are walked; everything is
      // listed before anything is removed, so removing cannot shift the pages being read.
      if (!prefix.endsWith('/') || !isKey(`${prefix}x`)) {
        throw new StoreError(`invalid storage prefix: ${prefix}`, { permanent: true, code: 'InvalidKey' });
      }
      const found: string[] = [];
      const folders = [prefix.slice(0, -1)];
      while (folders.length > 0) {
        const folder = folders.pop()!;
        for (let offset = 0; ; offset += LIST_PAGE) {
          const { data, error } = await files.list(folder, { limit: LIST_PAGE, offset, sortBy: { column: 'name', order: 'asc' } });
          if (error) throw failure(`cannot list ${folder}/ in ${where}`, error);
          for (const entry of data) (entry.id === null ? folders : found).push(`${folder}/${entry.name}`);
          if (data.length < LIST_PAGE) break;
        }
      }
      await this.remove(found);
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

/**
 * What a Storage error says, read the way the server means it. The server answers its errors as
 * HTTP 400 (500 for internal ones) with the real status as a string in the body's `statusCode`
 * ("404", "409", "413", "415", "403", "503", ...), and an error `code` (NoSuchBucket, ...);
 * Fastify's own answers (an unknown route) carry a number there. The client copies the body's
 * `statusCode`, else its `code`, else the HTTP status, into `statusCode`.
 */
interface StorageAnswer {
  /** The HTTP status; undefined when no answer came (network, timeout). */
  status: number | undefined;
  /** The status the server means: the body's statusCode when it is one, else the HTTP status. */
  meaning: number | undefined;
  /** The Storage error code from the body. */
  code: string | undefined;
  /** The body is a Storage server's error (not a gateway's, nor Fastify's unknown route). */
  fromStorage: boolean;
}

function answerOf(error: StorageError): StorageAnswer {
  const status = typeof error.status === 'number' ? error.status : undefined;
  const raw: unknown = (error as { statusCode?: unknown }).statusCode;
  const code = 'code' in error && typeof error.code === 'string' && error.code !== '' ? error.code : undefined;
  const meaning = /^\d{3}$/.test(String(raw)) ? Number(raw) : status;
  // A string statusCode that the client did not make up from the HTTP status, or an error code.
  const fromStorage = status !== undefined && (code !== undefined || (typeof raw === 'string' && raw !== String(status)));
  return { status, meaning, code, fromStorage };
}

/** An error answer of the Storage API as the client reads one (its handleError), for answerOf and failure. */
async function apiErrorOf(res: Response): Promise<StorageApiError> {
  const text = await res.text().catch(() => '');
  let body: { statusCode?: unknown; code?: unknown; message?: unknown; error?: unknown } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const code = typeof body?.code === 'string' ? body.code : undefined;
  const statusCode = String(body?.statusCode ?? code ?? res.status);
  const message = typeof body?.message === 'string' ? body.message : typeof body?.error === 'string' ? body.error : res.statusText || `HTTP ${res.status} error`;
  return new StorageApiError(message, res.status, statusCode, 'storage', code);
}

/** Will the same request fail again? Only for a 4xx meaning that is not "not now". */
function isPermanent(answer: StorageAnswer): boolean {
  const m = answer.meaning;
  return m !== undefined && m >= 400 && m < 500 && !TRANSIENT_4XX.has(m);
}

/** What to do about a permanent refusal, in the words of this service's configuration. */
function remedy(meaning: number | undefined, contentType: string | undefined): string {
  if (meaning === 413) return ": the image is larger than the bucket or the server accepts (the bucket's file size limit, or the server's upload limit)";
  if (meaning === 415) return `: the bucket does not accept ${contentType ?? 'this content type'} (add it to the bucket's allowed MIME types)`;
  if (meaning === 403) return ': the server refused the service role key, or a policy denies it (SUPABASE_SERVICE_ROLE_KEY)';
  return '';
}

/** The vendor error as cause; in the message, the server's own words, or why no answer came. */
function failure(message: string, error: StorageError, context: { contentType?: string; notFoundIsTransient?: boolean } = {}): StoreError {
  const answer = answerOf(error);
  let detail = '';
  let code = answer.code;
  if (answer.status !== undefined) {
    const raw = String((error as { statusCode?: unknown }).statusCode ?? '');
    detail = ` (HTTP ${answer.status}${raw && raw !== String(answer.status) ? `, statusCode ${raw}` : ''})`;
  } else {
    code = networkCode('originalError' in error ? error.originalError : undefined);
    // The client says only "fetch failed"; the reason (ECONNREFUSED, timeout, ...) is beneath.
    if (code) detail = ` (${code})`;
  }
  const permanent = isPermanent(answer) && !(context.notFoundIsTransient && answer.meaning === 404);
  const why = permanent ? remedy(answer.meaning, context.contentType) : '';
  return new StoreError(`${message}: ${error.message}${detail}${why}`, { permanent, code, cause: error });
}

/** The code of a network failure beneath a fetch error: ECONNREFUSED, ECONNRESET, TimeoutError, ... */
function networkCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name } = e as { code?: unknown; name?: unknown };
    if (typeof code === 'string') return code;
    if (name === 'TimeoutError' || name === 'AbortError') return name;
  }
  return undefined;
}

/** A media type without its parameters, compared case-insensitively. */
function essence(mediaType: string): string {
  return mediaType.split(';')[0]!.trim().toLowerCase();
}

function isKey(key: string): boolean {
  return key.split('/').every((s) => SEGMENT.test(s));
}

function batches<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}
