import type { Pool } from '../db/database.ts';
import { listGallery, setImageFavorite } from '../db/gallery.ts';
import { findImageRecord } from '../db/image-records.ts';
import type { Scope } from '../db/scope.ts';
import { AppError, notFound } from '../errors.ts';
import type { ImageStatus } from '../projects/progress.ts';
import type { ObjectStore } from '../storage/store.ts';
import { toImageRecords, type ImageRecord } from './record.ts';

export interface GalleryContext {
  sql: Pool;
  /** Signs private objects' URLs. */
  store: ObjectStore;
}

export interface GalleryFilters {
  limit: number;
  cursor?: string | undefined;
  projectId?: string | undefined;
  status?: ImageStatus | undefined;
  favorite?: boolean | undefined;
  provider?: string | undefined;
  q?: string | undefined;
  createdAfter?: string | undefined;
  createdBefore?: string | undefined;
}

/** The caller's images across projects, newest first; the cursor is opaque to clients. */
export async function listImages(ctx: GalleryContext, scope: Scope, f: GalleryFilters): Promise<{ items: ImageRecord[]; nextCursor: string | null }> {
  const rows = await listGallery(ctx.sql, scope, {
    limit: f.limit + 1,
    before: f.cursor ? decodeCursor(f.cursor) : null,
    projectId: f.projectId,
    status: f.status,
    favorite: f.favorite,
    provider: f.provider,
    createdAfter: f.createdAfter,
    createdBefore: f.createdBefore,
    search: f.q,
  });
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > f.limit && last ? encodeCursor(last.galleryAt, last.id) : null;
  return { items: await toImageRecords(ctx.store, page), nextCursor };
}

/** One image's full record. */
export async function readImage(ctx: GalleryContext, scope: Scope, id: string): Promise<ImageRecord> {
  const row = await findImageRecord(ctx.sql, scope, id);
  if (!row) throw notFound('image');
  const [record] = await toImageRecords(ctx.store, [row]);
  return record!;
}

/** Marks an image favorite or not; answers its record as it now is. */
export async function markFavorite(ctx: GalleryContext, scope: Scope, id: string, favorite: boolean): Promise<ImageRecord> {
  const row = await setImageFavorite(ctx.sql, scope, id, favorite);
  if (!row) throw notFound('image');
  const [record] = await toImageRecords(ctx.store, [row]);
  return record!;
}

/** The cursor keeps PostgreSQL's microseconds: images of the same millisecond are never skipped. */
function encodeCursor(galleryAt: string, id: string): string {
  return Buffer.from(JSON.stringify([galleryAt, id])).toString('base64url');
}

const PG_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Only a cursor this API made gets to PostgreSQL: anything else is a 400, never a 500 from a bad cast. */
function decodeCursor(cursor: string): { galleryAt: string; id: string } {
  try {
    const [galleryAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof galleryAt !== 'string' || !PG_TIMESTAMP.test(galleryAt) || !isRealInstant(galleryAt) || typeof id !== 'string' || !UUID.test(id)) {
      throw new Error('bad cursor');
    }
    return { galleryAt, id };
  } catch {
    throw new AppError('VALIDATION_FAILED', 'invalid cursor', [{ path: ['cursor'], message: 'not a cursor returned by this API' }]);
  }
}

/**
 * '2026-02-30 25:61:00+00' has the shape of a timestamp but names no instant, and PostgreSQL
 * has no year 0 (1 BC comes before AD 1): it would refuse both.
 */
export function isRealInstant(pg: string): boolean {
  const iso = `${pg.slice(0, 10)}T${pg.slice(11, 19)}Z`;
  const date = new Date(iso);
  return !Number.isNaN(date.getTime()) && date.getUTCFullYear() >= 1 && date.toISOString().slice(0, 19) === iso.slice(0, 19);
}
