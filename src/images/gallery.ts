import type { Pool } from '../db/database.ts';
import { listGallery, setImageFavorite } from '../db/gallery.ts';
import { findImageRecord } from '../db/image-records.ts';
import { decodeCursor, encodeCursor } from '../db/keyset-cursor.ts';
import type { Scope } from '../db/scope.ts';
import { notFound } from '../errors.ts';
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
  const position = f.cursor ? decodeCursor(f.cursor) : null;
  const rows = await listGallery(ctx.sql, scope, {
    limit: f.limit + 1,
    before: position && { galleryAt: position.at, id: position.id },
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
