import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The routes of the Storage API this fake speaks, as named in faults and recorded requests. */
export type FakeStorageRoute =
  | 'createBucket' // POST /bucket
  | 'getBucket' // GET /bucket/{id}
  | 'deleteBucket' // DELETE /bucket/{id}
  | 'upload' // POST /object/{bucket}/{path}
  | 'remove' // DELETE /object/{bucket}  {prefixes}
  | 'list' // POST /object/list/{bucket}  {prefix, limit, offset, sortBy, search}: one folder level
  | 'download' // GET /object/{bucket}/{path}  (authenticated)
  | 'signMany' // POST /object/sign/{bucket}  {expiresIn, paths}
  | 'sign' // POST /object/sign/{bucket}/{path}  {expiresIn}
  | 'publicDownload' // GET /object/public/{bucket}/{path}
  | 'signedDownload'; // GET /object/sign/{bucket}/{path}?token=

/**
 * What the next request to a route gets instead of its answer: `upload:500`, `download:reset`, ...
 * Faults form one queue, in the order scripted; a request consumes the first one naming its route.
 * In the server's own shapes: 500: InternalError (HTTP 500). 503: DatabaseConnectionLimit (HTTP 400,
 * statusCode "503"). 403: a row-level security policy denies the request (AccessDenied, HTTP 400,
 * statusCode "403"): a valid key that is not allowed. 429: SlowDown (the server's one real HTTP 429).
 * hang: never answers.
 * reset: the connection is cut after the request was read (and, for an upload, after storing: the
 * object is there, its answer is lost). truncate: a download's body breaks off halfway.
 * Refusals that are not faults come from the bucket itself, as on the server: a bucket's
 * `file_size_limit` (413) and `allowed_mime_types` (415), a wrong key (403).
 */
export type FakeStorageFault = `${FakeStorageRoute}:${'500' | '503' | '429' | '403' | 'hang' | 'reset' | 'truncate'}`;

export interface RecordedStorageRequest {
  method: string;
  /** Path under the prefix, with its query. */
  path: string;
  route: FakeStorageRoute | undefined;
  headers: IncomingMessage['headers'];
  /** Parsed JSON bodies; for an upload, the number of bytes. */
  body: unknown;
}

export interface FakeBucket {
  id: string;
  name: string;
  public: boolean;
  /** Bytes; null: only the server's limit applies. */
  file_size_limit: number | null;
  /** `image/png`, `image/*`; null: any. */
  allowed_mime_types: string[] | null;
  created_at: string;
}

export interface FakeSupabaseStorage {
  /** Where the Storage API answers: the origin followed by the prefix. */
  url: string;
  /** The origin alone: the "project URL" when the prefix is /storage/v1. */
  origin: string;
  serviceRoleKey: string;
  requests: RecordedStorageRequest[];
  /** Stored objects by `${bucket}/${path}`. */
  objects: Map<string, { bytes: Buffer; contentType: string; cacheControl: string | undefined }>;
  buckets: Map<string, FakeBucket>;
  script(...faults: FakeStorageFault[]): void;
  /** Runs `action` once, just before the next request to `route` is handled: another client acting in between. */
  beforeNext(route: FakeStorageRoute, action: () => void): void;
  close(): Promise<void>;
}

/** The bucket-name rule of supabase/storage (src/storage/limits.ts). */
const BUCKET_NAME = /^[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}$/;
const NOT_SIGNABLE = 'Either the object does not exist or you do not have access to it';
/** The server's check of a bucket's allowed_mime_types entries (a wildcard passes by its trailing `*`). */
const MIME_TYPE = /^([a-zA-Z0-9\-+.]+)\/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?$|\*$/;

export interface FakeStorageOptions {
  /** '' like the bare server, '/storage/v1' like a Supabase project. */
  prefix?: string;
  /** The server's own upload limit in bytes (its FILE_SIZE_LIMIT; 50 MiB by default). */
  fileSizeLimit?: number;
  /**
   * Answer errors with their real HTTP status (404, 409, 413, ...) instead of 400, the body
   * unchanged: the server's error handler does so when told to (`respectStatusCode`), and a later
   * release may do it everywhere. Off by default: today's server answers 400.
   */
  respectStatusCode?: boolean;
}

/**
 * A fake Supabase Storage API on 127.0.0.1 (supabase/storage's wire format), under `prefix`.
 * Errors follow the server's error handler (src/http/error-handler.ts): HTTP 400 (500 for internal
 * errors) with `{statusCode: "<real status>", code, error, message}`; an unknown route is Fastify's
 * real 404 with a numeric statusCode.
 */
export async function startFakeSupabaseStorage(options: FakeStorageOptions = {}): Promise<FakeSupabaseStorage> {
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  const serverSizeLimit = options.fileSizeLimit ?? 50 * 1024 * 1024;
  /** The server's error handler: the real status in the body, HTTP 400 unless internal. */
  const storageError = (res: ServerResponse, statusCode: string, code: string, error: string, message: string) => {
    const status = options.respectStatusCode ? Number(statusCode) : statusCode === '500' ? 500 : 400;
    json(res, status, { statusCode, code, error, message });
  };
  const noSuchBucket = (res: ServerResponse) => storageError(res, '404', 'NoSuchBucket', 'Bucket not found', 'Bucket not found');
  const notFound = (res: ServerResponse) => storageError(res, '404', 'NoSuchKey', 'not_found', 'Object not found');
  const serviceRoleKey = `fake-service-role.${randomBytes(16).toString('base64url')}`;
  const signingSecret = randomBytes(32);
  const requests: RecordedStorageRequest[] = [];
  const objects: FakeSupabaseStorage['objects'] = new Map();
  const buckets = new Map<string, FakeBucket>();
  const faults: FakeStorageFault[] = [];
  const interludes: { route: FakeStorageRoute; action: () => void }[] = [];

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) storageError(res, '500', 'InternalError', 'InternalError', `fake storage: ${(err as Error).message}`);
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? '';
    const raw = await readBody(req);
    const inner = url.pathname.startsWith(`${prefix}/`) ? url.pathname.slice(prefix.length) : undefined;
    const match = inner === undefined ? undefined : routeOf(method, inner);
    const isJson = /^application\/json/.test(req.headers['content-type'] ?? '');
    const body = match?.route === 'upload' ? raw.length : isJson ? parseJson(raw) : undefined;
    requests.push({ method, path: `${inner ?? url.pathname}${url.search}`, route: match?.route, headers: req.headers, body });

    if (!match) {
      // Fastify's own answer for an unknown route: a real HTTP 404.
      return json(res, 404, { message: `Route ${method}:${url.pathname} not found`, error: 'Not Found', statusCode: 404 });
    }
    const { route, bucket, path } = match;
    if (route !== 'publicDownload' && route !== 'signedDownload') {
      // The jwt plugin: no valid bearer token is AccessDenied, answered as HTTP 400 (apikey alone is not enough).
      const token = (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
      if (!token) return storageError(res, '403', 'AccessDenied', 'Unauthorized', 'jwt must be provided');
      if (token !== serviceRoleKey) return storageError(res, '403', 'AccessDenied', 'Unauthorized', 'invalid signature');
    }

    const interlude = interludes.findIndex((i) => i.route === route);
    if (interlude >= 0) interludes.splice(interlude, 1)[0]!.action();

    const index = faults.findIndex((f) => f.startsWith(`${route}:`));
    const fault = index >= 0 ? faults.splice(index, 1)[0]!.split(':')[1] : undefined;
    if (fault === 'hang') return;
    if (fault === '500') return storageError(res, '500', 'InternalError', 'InternalError', 'Internal server error');
    if (fault === '403') return storageError(res, '403', 'AccessDenied', 'Unauthorized', 'new row violates row-level security policy');
    if (fault === '503') {
      const message = 'The database has reached its maximum number of connections. Please try again later.';
      return storageError(res, '503', 'DatabaseConnectionLimit', 'DatabaseConnectionLimit', message);
    }
    // The one error the server answers with its real status whatever respectStatusCode says.
    if (fault === '429') {
      return json(res, 429, { statusCode: '429', code: 'SlowDown', error: 'too_many_connections', message: 'Too many connections issued to the database' });
    }
    if (fault === 'reset' && route !== 'upload') return void req.socket.destroy();

    switch (route) {
      case 'createBucket': {
        const b = body as { id?: string; name?: string; public?: boolean; file_size_limit?: unknown; allowed_mime_types?: unknown } | undefined;
        const id = b?.id || b?.name;
        if (!id) return validationError(res, "body must have required property 'name'");
        if (!BUCKET_NAME.test(id)) return storageError(res, '400', 'InvalidBucketName', 'Invalid Input', 'Bucket name invalid');
        const limit = b?.file_size_limit ?? null;
        if (limit !== null && (!Number.isInteger(limit) || (limit as number) < 0)) {
          return storageError(res, '400', 'InvalidRequest', 'InvalidRequest', 'Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B');
        }
        if (limit !== null && (limit as number) > serverSizeLimit) {
          return storageError(res, '413', 'EntityTooLarge', 'Payload too large', 'The object exceeded the maximum allowed size');
        }
        const mimeTypes = b?.allowed_mime_types ?? null;
        if (mimeTypes !== null && (!Array.isArray(mimeTypes) || !mimeTypes.every((t) => typeof t === 'string' && MIME_TYPE.test(t)))) {
          return storageError(res, '415', 'InvalidMimeType', 'invalid_mime_type', `mime type ${String(mimeTypes)} is not supported`);
        }
        if (buckets.has(id)) return storageError(res, '409', 'BucketAlreadyExists', 'Duplicate', 'The resource already exists');
        buckets.set(id, {
          id,
          name: b?.name ?? id,
          public: b?.public ?? false,
          file_size_limit: limit as number | null,
          allowed_mime_types: mimeTypes as string[] | null,
          created_at: new Date().toISOString(),
        });
        return json(res, 200, { name: b?.name ?? id });
      }
      case 'getBucket': {
        const found = buckets.get(bucket);
        if (!found) return noSuchBucket(res);
        return json(res, 200, { ...found, owner: '', type: 'STANDARD', updated_at: found.created_at });
      }
      case 'deleteBucket': {
        if (!buckets.has(bucket)) return noSuchBucket(res);
        if ([...objects.keys()].some((k) => k.startsWith(`${bucket}/`))) {
          return storageError(res, '409', 'ResourceNotEmpty', 'ResourceNotEmpty', 'The bucket you tried to delete is not empty');
        }
        buckets.delete(bucket);
        return json(res, 200, { message: 'Successfully deleted' });
      }
      case 'upload': {
        const target = buckets.get(bucket);
        if (!target) return noSuchBucket(res);
        if (!isValidKey(path)) return storageError(res, '400', 'InvalidKey', 'InvalidKey', `Invalid key: ${path}`);
        const contentType = req.headers['content-type'] || 'text/plain;charset=UTF-8';
        if (target.allowed_mime_types && !mimeAllowed(contentType, target.allowed_mime_types)) {
          return storageError(res, '415', 'InvalidMimeType', 'invalid_mime_type', `mime type ${contentType} is not supported`);
        }
        if (raw.length > Math.min(target.file_size_limit ?? Infinity, serverSizeLimit)) {
          return storageError(res, '413', 'EntityTooLarge', 'Payload too large', 'The object exceeded the maximum allowed size');
        }
        const id = `${bucket}/${path}`;
        if (objects.has(id) && req.headers['x-upsert'] !== 'true') {
          return storageError(res, '409', 'KeyAlreadyExists', 'Duplicate', 'The resource already exists');
        }
        objects.set(id, { bytes: raw, contentType, cacheControl: req.headers['cache-control'] });
        if (fault === 'reset') return void req.socket.destroy(); // stored, but the answer is lost
        return json(res, 200, { Id: randomUUID(), Key: id });
      }
      case 'remove': {
        const prefixes = (body as { prefixes?: unknown } | undefined)?.prefixes;
        if (!Array.isArray(prefixes) || prefixes.length === 0) return validationError(res, 'body/prefixes must NOT have fewer than 1 items');
        if (prefixes.length > 1000) return storageError(res, '400', 'InvalidRequest', 'InvalidRequest', 'Bulk object requests are limited to 1000 objects per request.');
        const removed = prefixes.filter((p: string) => objects.delete(`${bucket}/${p}`));
        return json(res, 200, removed.map((name: string) => ({ name, bucket_id: bucket, id: randomUUID() })));
      }
      case 'list': {
        if (!buckets.has(bucket)) return noSuchBucket(res);
        const b = body as { prefix?: unknown; limit?: unknown; offset?: unknown; sortBy?: { column?: unknown; order?: unknown }; search?: unknown } | undefined;
        if (typeof b?.prefix !== 'string') return validationError(res, "body must have required property 'prefix'");
        const limit = b.limit ?? 100;
        const offset = b.offset ?? 0;
        if (!Number.isInteger(limit) || (limit as number) < 1) return validationError(res, 'body/limit must be >= 1');
        if (!Number.isInteger(offset) || (offset as number) < 0) return validationError(res, 'body/offset must be >= 0');
        const column = b.sortBy?.column ?? 'name';
        if (!['name', 'updated_at', 'created_at', 'last_accessed_at'].includes(column as string)) {
          return validationError(res, 'body/sortBy/column must be equal to one of the allowed values');
        }
        // One level under the folder: a file as itself, a deeper path as its folder (null id).
        const folder = b.prefix === '' || b.prefix.endsWith('/') ? b.prefix : `${b.prefix}/`;
        const entries = new Map<string, boolean>();
        for (const key of objects.keys()) {
          if (!key.startsWith(`${bucket}/${folder}`)) continue;
          const rest = key.slice(bucket.length + 1 + folder.length);
          const slash = rest.indexOf('/');
          const name = slash < 0 ? rest : rest.slice(0, slash);
          if (typeof b.search === 'string' && b.search && !name.toLowerCase().startsWith(b.search.toLowerCase())) continue;
          entries.set(name, entries.get(name) === true || slash < 0);
        }
        const names = [...entries.keys()].sort();
        if (b.sortBy?.order === 'desc') names.reverse();
        const now = new Date().toISOString();
        return json(
          res,
          200,
          names.slice(offset as number, (offset as number) + (limit as number)).map((name) =>
            entries.get(name)
              ? { name, id: randomUUID(), updated_at: now, created_at: now, last_accessed_at: now, metadata: { size: objects.get(`${bucket}/${folder}${name}`)?.bytes.length ?? 0 } }
              : { name, id: null, updated_at: null, created_at: null, last_accessed_at: null, metadata: null },
          ),
        );
      }
      case 'signMany': {
        const b = body as { expiresIn?: unknown; paths?: unknown } | undefined;
        if (!Number.isInteger(b?.expiresIn) || (b!.expiresIn as number) < 1) return validationError(res, 'body/expiresIn must be >= 1');
        if (!Array.isArray(b!.paths) || b!.paths.length === 0) return validationError(res, 'body/paths must NOT have fewer than 1 items');
        const expiresIn = b!.expiresIn as number;
        return json(res, 200, (b!.paths as string[]).map((p) =>
          objects.has(`${bucket}/${p}`) ? { error: null, path: p, signedURL: signedUrl(`${bucket}/${p}`, expiresIn) } : { error: NOT_SIGNABLE, path: p, signedURL: null },
        ));
      }
      case 'sign': {
        const expiresIn = (body as { expiresIn?: unknown } | undefined)?.expiresIn;
        if (!Number.isInteger(expiresIn) || (expiresIn as number) < 1) return validationError(res, 'body/expiresIn must be >= 1');
        if (!objects.has(`${bucket}/${path}`)) return notFound(res);
        return json(res, 200, { signedURL: signedUrl(`${bucket}/${path}`, expiresIn as number) });
      }
      case 'download': {
        if (!buckets.has(bucket)) return noSuchBucket(res);
        return serveObject(res, `${bucket}/${path}`, fault);
      }
      case 'publicDownload': {
        // findBucket(..., { isPublic: true }): a private bucket is a missing one here.
        if (!buckets.get(bucket)?.public) return noSuchBucket(res);
        return serveObject(res, `${bucket}/${path}`, fault);
      }
      case 'signedDownload': {
        const token = url.searchParams.get('token');
        if (!token) return validationError(res, "querystring must have required property 'token'");
        const claims = verifyToken(token);
        if (typeof claims === 'string') return storageError(res, '400', 'InvalidJWT', 'InvalidJWT', claims);
        if (claims.url !== `${bucket}/${path}`) return storageError(res, '400', 'InvalidSignature', 'InvalidSignature', 'Invalid signature');
        return serveObject(res, claims.url, fault);
      }
    }
  }

  function serveObject(res: ServerResponse, id: string, fault: string | undefined) {
    const found = objects.get(id);
    if (!found) return notFound(res);
    res.writeHead(200, {
      'content-type': found.contentType,
      'content-length': String(found.bytes.length),
      ...(found.cacheControl ? { 'cache-control': found.cacheControl } : {}),
    });
    if (fault !== 'truncate') return void res.end(found.bytes);
    // Half the promised bytes, then the connection goes.
    res.write(found.bytes.subarray(0, Math.floor(found.bytes.length / 2)), () => res.destroy());
  }

  /** A signed URL as the server returns it: relative to the API, path not encoded. */
  function signedUrl(objectUrl: string, expiresIn: number): string {
    const iat = Math.floor(Date.now() / 1000);
    const head = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const claims = Buffer.from(JSON.stringify({ url: objectUrl, iat, exp: iat + expiresIn })).toString('base64url');
    return `/object/sign/${objectUrl}?token=${head}.${claims}.${mac(`${head}.${claims}`)}`;
  }

  /** The token's claims, or the reason it is refused (jsonwebtoken's words). */
  function verifyToken(token: string): { url: string; exp: number } | string {
    const [head, claims, sig] = token.split('.');
    if (!head || !claims || !sig) return 'jwt malformed';
    const expected = Buffer.from(mac(`${head}.${claims}`));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid signature';
    const parsed = parseJson(Buffer.from(claims, 'base64url')) as { url: string; exp: number } | undefined;
    if (!parsed) return 'jwt malformed';
    if (parsed.exp <= Date.now() / 1000) return 'jwt expired';
    return parsed;
  }

  function mac(data: string): string {
    return createHmac('sha256', signingSecret).update(data).digest('base64url');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}${prefix}`,
    origin,
    serviceRoleKey,
    requests,
    objects,
    buckets,
    script: (...next) => void faults.push(...next),
    beforeNext: (route, action) => void interludes.push({ route, action }),
    async close() {
      server.closeAllConnections(); // hung requests included
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

function routeOf(method: string, path: string): { route: FakeStorageRoute; bucket: string; path: string } | undefined {
  const parts = path.split('/').slice(1).map(decodeURIComponent);
  const at = (i: number) => ({ bucket: parts[i] ?? '', path: parts.slice(i + 1).join('/') });
  const [a, b, c] = parts;
  if (a === 'bucket' && parts.length === 1 && method === 'POST') return { route: 'createBucket', bucket: '', path: '' };
  if (a === 'bucket' && parts.length === 2 && b) {
    if (method === 'GET') return { route: 'getBucket', ...at(1) };
    if (method === 'DELETE') return { route: 'deleteBucket', ...at(1) };
  }
  if (a !== 'object' || !b) return undefined;
  if (b === 'sign' && c) {
    if (method === 'POST') return { route: parts.length === 3 ? 'signMany' : 'sign', ...at(2) };
    if (method === 'GET' && parts.length > 3) return { route: 'signedDownload', ...at(2) };
    return undefined;
  }
  if (b === 'public' && c && method === 'GET' && parts.length > 3) return { route: 'publicDownload', ...at(2) };
  if (b === 'list' && c && method === 'POST' && parts.length === 3) return { route: 'list', ...at(2) };
  if (method === 'DELETE' && parts.length === 2) return { route: 'remove', ...at(1) };
  if (method === 'GET' && parts.length > 2) return { route: 'download', ...at(1) };
  if (method === 'POST' && parts.length > 2) return { route: 'upload', ...at(1) };
  return undefined;
}

function isValidKey(key: string): boolean {
  return key.length > 0 && key.length <= 1024 && !/(^|\/)\.{1,2}(\/|$)/.test(key) && !/[\u0000-\u001f#[\]{}^`"<>\\|%~]/.test(key);
}

/** The server's rule for a bucket's allowed types: `type/subtype` exactly, or `type/*`. */
function mimeAllowed(contentType: string, allowed: readonly string[]): boolean {
  const [type, subtype] = contentType.split(';')[0]!.trim().split('/');
  if (!type || !subtype) return false;
  return allowed.some((a) => {
    const [t, s] = a.split('/');
    return t === type && (s === '*' || s === subtype);
  });
}

/** Fastify's schema validation, through the server's error handler. */
function validationError(res: ServerResponse, message: string) {
  json(res, 400, { statusCode: '400', error: 'Bad Request', message });
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function parseJson(raw: Buffer): unknown {
  try {
    return raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
  } catch {
    return undefined;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
