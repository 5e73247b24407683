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
  | 'signMany' // POST /object/sign/{bucket}  {expiresIn, paths}
  | 'sign' // POST /object/sign/{bucket}/{path}  {expiresIn}
  | 'publicDownload' // GET /object/public/{bucket}/{path}
  | 'signedDownload'; // GET /object/sign/{bucket}/{path}?token=

/**
 * What the next request to a route gets instead of its answer: `upload:500`, `sign:413`, ...
 * Faults form one queue, in the order scripted; a request consumes the first one naming its route.
 * 500: InternalError. 413: EntityTooLarge (as a gateway answers). hang: never answers.
 * reset: the connection is cut after the request was read (and, for an upload, after storing).
 */
export type FakeStorageFault = `${FakeStorageRoute}:${'500' | '413' | 'hang' | 'reset'}`;

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
  close(): Promise<void>;
}

/** The bucket-name rule of supabase/storage (src/storage/limits.ts). */
const BUCKET_NAME = /^[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}$/;
const NOT_SIGNABLE = 'Either the object does not exist or you do not have access to it';

/**
 * A fake Supabase Storage API on 127.0.0.1 (supabase/storage's wire format), under `prefix`:
 * '' like the bare server, '/storage/v1' like a Supabase project. Errors follow the server's
 * error handler: HTTP 400 (500 for internal errors) with `{statusCode: "<status>", code, error, message}`.
 */
export async function startFakeSupabaseStorage(options: { prefix?: string } = {}): Promise<FakeSupabaseStorage> {
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  const serviceRoleKey = `fake-service-role.${randomBytes(16).toString('base64url')}`;
  const signingSecret = randomBytes(32);
  const requests: RecordedStorageRequest[] = [];
  const objects: FakeSupabaseStorage['objects'] = new Map();
  const buckets = new Map<string, FakeBucket>();
  const faults: FakeStorageFault[] = [];

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) storageError(res, 500, 'InternalError', 'internal', `fake storage: ${(err as Error).message}`);
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
      if (!token) return storageError(res, 400, 'AccessDenied', 'Unauthorized', 'jwt must be provided', '403');
      if (token !== serviceRoleKey) return storageError(res, 400, 'AccessDenied', 'Unauthorized', 'invalid signature', '403');
    }

    const index = faults.findIndex((f) => f.startsWith(`${route}:`));
    const fault = index >= 0 ? faults.splice(index, 1)[0]!.split(':')[1] : undefined;
    if (fault === 'hang') return;
    if (fault === '500') return storageError(res, 500, 'InternalError', 'internal', 'Internal Server Error');
    if (fault === '413') return storageError(res, 413, 'EntityTooLarge', 'Payload too large', 'The object exceeded the maximum allowed size');
    if (fault === 'reset' && route !== 'upload') return void req.socket.destroy();

    switch (route) {
      case 'createBucket': {
        const b = body as { id?: string; name?: string; public?: boolean } | undefined;
        const id = b?.id || b?.name;
        if (!id) return storageError(res, 400, 'InvalidRequest', 'Bad Request', "body must have required property 'name'", '400');
        if (!BUCKET_NAME.test(id)) return storageError(res, 400, 'InvalidBucketName', 'Invalid Input', 'Bucket name invalid', '400');
        if (buckets.has(id)) return storageError(res, 400, 'BucketAlreadyExists', 'Duplicate', 'The resource already exists', '409');
        buckets.set(id, { id, name: b?.name ?? id, public: b?.public ?? false, created_at: new Date().toISOString() });
        return json(res, 200, { name: b?.name ?? id });
      }
      case 'getBucket': {
        const found = buckets.get(bucket);
        if (!found) return noSuchBucket(res);
        return json(res, 200, { ...found, owner: '', type: 'STANDARD', file_size_limit: null, allowed_mime_types: null, updated_at: found.created_at });
      }
      case 'deleteBucket': {
        if (!buckets.has(bucket)) return noSuchBucket(res);
        if ([...objects.keys()].some((k) => k.startsWith(`${bucket}/`))) {
          return storageError(res, 400, 'ResourceNotEmpty', 'ResourceNotEmpty', 'The bucket you tried to delete is not empty', '409');
        }
        buckets.delete(bucket);
        return json(res, 200, { message: 'Successfully deleted' });
      }
      case 'upload': {
        if (!buckets.has(bucket)) return noSuchBucket(res);
        if (!isValidKey(path)) return storageError(res, 400, 'InvalidKey', 'InvalidKey', `Invalid key: ${path}`, '400');
        const id = `${bucket}/${path}`;
        if (objects.has(id) && req.headers['x-upsert'] !== 'true') {
          return storageError(res, 400, 'KeyAlreadyExists', 'Duplicate', 'The resource already exists', '409');
        }
        const contentType = req.headers['content-type'] || 'text/plain;charset=UTF-8';
        objects.set(id, { bytes: raw, contentType, cacheControl: req.headers['cache-control'] });
        if (fault === 'reset') return void req.socket.destroy(); // stored, but the answer is lost
        return json(res, 200, { Id: randomUUID(), Key: id });
      }
      case 'remove': {
        const prefixes = (body as { prefixes?: unknown } | undefined)?.prefixes;
        if (!Array.isArray(prefixes) || prefixes.length === 0) return validationError(res, 'body/prefixes must NOT have fewer than 1 items');
        if (prefixes.length > 1000) return storageError(res, 400, 'InvalidRequest', 'InvalidRequest', 'Bulk object requests are limited to 1000 objects per request.', '400');
        const removed = prefixes.filter((p: string) => objects.delete(`${bucket}/${p}`));
        return json(res, 200, removed.map((name: string) => ({ name, bucket_id: bucket, id: randomUUID() })));
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
      case 'publicDownload': {
        // findBucket(..., { isPublic: true }): a private bucket is a missing one here.
        if (!buckets.get(bucket)?.public) return noSuchBucket(res);
        return serveObject(res, `${bucket}/${path}`);
      }
      case 'signedDownload': {
        const token = url.searchParams.get('token');
        if (!token) return validationError(res, "querystring must have required property 'token'");
        const claims = verifyToken(token);
        if (typeof claims === 'string') return storageError(res, 400, 'InvalidJWT', 'InvalidJWT', claims, '400');
        if (claims.url !== `${bucket}/${path}`) return storageError(res, 400, 'InvalidSignature', 'InvalidSignature', 'Invalid signature', '400');
        return serveObject(res, claims.url);
      }
    }
  }

  function serveObject(res: ServerResponse, id: string) {
    const found = objects.get(id);
    if (!found) return notFound(res);
    res.writeHead(200, {
      'content-type': found.contentType,
      'content-length': String(found.bytes.length),
      ...(found.cacheControl ? { 'cache-control': found.cacheControl } : {}),
    });
    res.end(found.bytes);
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
  if (method === 'DELETE' && parts.length === 2) return { route: 'remove', ...at(1) };
  if (method === 'POST' && parts.length > 2) return { route: 'upload', ...at(1) };
  return undefined;
}

function isValidKey(key: string): boolean {
  return key.length > 0 && key.length <= 1024 && !/(^|\/)\.{1,2}(\/|$)/.test(key) && !/[\u0000-\u001f#[\]{}^`"<>\\|%~]/.test(key);
}

function storageError(res: ServerResponse, status: number, code: string, error: string, message: string, statusCode = String(status)) {
  json(res, status, { statusCode, code, error, message });
}

function noSuchBucket(res: ServerResponse) {
  storageError(res, 400, 'NoSuchBucket', 'Bucket not found', 'Bucket not found', '404');
}

function notFound(res: ServerResponse) {
  storageError(res, 400, 'NoSuchKey', 'not_found', 'Object not found', '404');
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
