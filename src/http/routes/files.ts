import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { AppError } from '../../errors.ts';
import type { LocalObjectStore } from '../../storage/local.ts';
import type { AppEnv } from '../env.ts';

/**
 * GET /files/<key>: objects of the local store. Keys never change content, so a public file is
 * immutable. A private store's files need a valid signed URL, checked before the key is looked up
 * (so an unsigned request cannot probe which keys exist), and no cache may keep one longer than
 * its URL lives.
 */
export function fileRoutes(store: LocalObjectStore) {
  const app = new Hono<AppEnv>();
  app.get('/files/*', async (c) => {
    let key: string;
    try {
      key = decodeURIComponent(c.req.path.slice('/files/'.length));
    } catch {
      throw new AppError('NOT_FOUND', 'file not found');
    }
    let cacheControl = 'public, max-age=31536000, immutable';
    if (store.checkSignedUrl) {
      const nowS = Math.floor(Date.now() / 1000);
      const access = store.checkSignedUrl(key, c.req.query('expires'), c.req.query('signature'), nowS);
      if (!access.granted) throw new AppError('FORBIDDEN', access.reason);
      cacheControl = `private, max-age=${access.expiresAt - nowS}`;
    }
    const file = await store.open(key);
    if (!file) throw new AppError('NOT_FOUND', 'file not found');
    const headers = { 'Content-Type': file.contentType, ETag: file.etag, 'Cache-Control': cacheControl };
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304, headers);
    const body = Readable.toWeb(createReadStream(file.path)) as ReadableStream<Uint8Array>;
    return c.body(body, 200, { ...headers, 'Content-Length': String(file.size) });
  });
  return app;
}
