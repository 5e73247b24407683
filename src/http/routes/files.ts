import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { AppError } from '../../domain/errors.ts';
import type { LocalObjectStore } from '../../storage/local.ts';
import type { AppEnv } from '../env.ts';

/** GET /files/<key>: objects of the local store. Keys never change content, so: immutable. */
export function fileRoutes(store: LocalObjectStore) {
  const app = new Hono<AppEnv>();
  app.get('/files/*', async (c) => {
    let key: string;
    try {
      key = decodeURIComponent(c.req.path.slice('/files/'.length));
    } catch {
      throw new AppError('NOT_FOUND', 'file not found');
    }
    const file = await store.open(key);
    if (!file) throw new AppError('NOT_FOUND', 'file not found');
    const headers = {
      'Content-Type': file.contentType,
      ETag: file.etag,
      'Cache-Control': 'public, max-age=31536000, immutable',
    };
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304, headers);
    const body = Readable.toWeb(createReadStream(file.path)) as ReadableStream<Uint8Array>;
    return c.body(body, 200, { ...headers, 'Content-Length': String(file.size) });
  });
  return app;
}
