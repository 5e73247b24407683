import type { Pool } from '../db/database.ts';
import { deleteSlotImage, restoreVersion } from '../db/image-lifecycle.ts';
import { findImageRecord, listSlotVersions } from '../db/image-records.ts';
import type { Scope } from '../db/scope.ts';
import { AppError, notFound } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from '../storage/store.ts';
import { toImageRecords, toVersionRecords, type ImageRecord, type VersionRecord } from './record.ts';

export interface ImagesContext {
  sql: Pool;
  store: ObjectStore;
  log: Logger;
}

/** A slot's images, newest version first: the current one and every kept version. */
export async function listVersions(ctx: ImagesContext, scope: Scope, id: string): Promise<VersionRecord[]> {
  const rows = await listSlotVersions(ctx.sql, scope, id);
  if (!rows) throw notFound('image');
  return toVersionRecords(ctx.store, rows);
}

/**
 * Makes a kept version current (atomically; the current image becomes a version; a
 * regenerate in progress for the slot is cancelled). The change reaches event streams like
 * any image change.
 */
export async function restoreImageVersion(ctx: ImagesContext, scope: Scope, id: string, version: number): Promise<ImageRecord> {
  const restored = await ctx.sql.begin((tx) => restoreVersion(tx, scope, id, version));
  if (!restored) {
    if (!(await findImageRecord(ctx.sql, scope, id))) throw notFound('image');
    throw new AppError('NOT_FOUND', `image ${id} has no kept version ${version}`);
  }
  const [record] = await toImageRecords(ctx.store, [(await findImageRecord(ctx.sql, scope, id))!]);
  return record!;
}

/**
 * Deletes an image, its kept versions and their stored objects. Its slot stays in the scene,
 * empty, until POST /projects/:id/generate refills it.
 */
export async function deleteImage(ctx: ImagesContext, scope: Scope, id: string): Promise<void> {
  const keys = await ctx.sql.begin((tx) => deleteSlotImage(tx, scope, id));
  if (keys === undefined) throw notFound('image');
  await removeObjects(ctx, keys);
}

/** After commit: nothing references these objects any more. A failure leaves orphans, never a broken row. */
export async function removeObjects(ctx: Pick<ImagesContext, 'store' | 'log'>, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await ctx.store.remove(keys).catch((err: unknown) => ctx.log.warn({ err, keys: keys.length }, 'could not remove deleted objects'));
}
