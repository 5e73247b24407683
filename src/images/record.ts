import { toIso } from '../db/database.ts';
import type { ImageRecordRow } from '../db/image-records.ts';
import type { ObjectStore } from '../storage/store.ts';

/** The contract's ImageRecord: an image with everything known about it. */
export interface ImageRecord {
  id: string;
  projectId: string;
  projectTitle: string | null;
  sceneIndex: number;
  imageIndex: number;
  status: ImageRecordRow['status'];
  url: string | null;
  width: number | null;
  height: number | null;
  mimeType: string | null;
  bytes: number | null;
  sha256: string | null;
  provider: string | null;
  model: string | null;
  seed: number | null;
  attempts: number;
  error: string | null;
  prompt: string | null;
  fullPrompt: string | null;
  revisedPrompt: string | null;
  style: string | null;
  aspectRatio: string | null;
  providerRequestId: string | null;
  favorite: boolean;
  stale: boolean;
  /** The image's version in its slot; null while the slot has no image. */
  version: number | null;
  timings: { queuedAt: string | null; startedAt: string | null; finishedAt: string | null };
  costUsd: number | null;
  createdAt: string;
  updatedAt: string;
}

/** In GET /images/:id/versions: whether this version is the one the slot serves. */
export type VersionRecord = ImageRecord & { current: boolean };

const iso = (pg: string | null) => (pg === null ? null : toIso(pg));

/**
 * Records as answered: a private store's objects get fresh signed URLs (all in one call),
 * every other image keeps its URL. Pure but for the store's signing.
 */
export async function toImageRecords(store: ObjectStore, rows: readonly ImageRecordRow[]): Promise<ImageRecord[]> {
  const keys = store.private && store.signUrls ? rows.flatMap((r) => (r.storageKey ? [r.storageKey] : [])) : [];
  const signed = keys.length > 0 ? await store.signUrls!(keys) : new Map<string, string>();
  return rows.map((r) => {
    const hasImage = r.imageUrl !== null || r.storageKey !== null;
    return {
      id: r.id,
      projectId: r.projectId,
      projectTitle: r.projectTitle,
      sceneIndex: r.sceneIndex,
      imageIndex: r.imageIndex,
      status: r.status,
      url: (r.storageKey && signed.get(r.storageKey)) ?? r.imageUrl,
      width: r.width,
      height: r.height,
      mimeType: r.mimeType,
      bytes: r.bytes,
      sha256: r.sha256,
      provider: r.provider,
      model: r.model,
      seed: r.seed,
      attempts: r.attempts,
      error: r.error,
      prompt: r.prompt,
      fullPrompt: r.fullPrompt,
      revisedPrompt: r.revisedPrompt,
      style: r.style,
      aspectRatio: r.aspectRatio,
      providerRequestId: r.providerRequestId,
      favorite: r.favorite,
      stale: r.stale,
      version: hasImage ? r.version : null,
      timings: { queuedAt: iso(r.queuedAt), startedAt: iso(r.startedAt), finishedAt: iso(r.finishedAt) },
      costUsd: r.costUsd === null ? null : Number(r.costUsd),
      createdAt: toIso(r.createdAt),
      updatedAt: toIso(r.updatedAt),
    };
  });
}

export async function toVersionRecords(store: ObjectStore, rows: readonly ImageRecordRow[]): Promise<VersionRecord[]> {
  const records = await toImageRecords(store, rows);
  return records.map((record, i) => ({ ...record, current: rows[i]!.current }));
}
