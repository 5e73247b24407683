import type { ImageRowVersion, WatchedImage } from '../db/events.ts';
import type { StoredSceneImage } from '../db/images.ts';
import type { ImageStatus } from '../projects/progress.ts';

/** A watched project's images as last read, by id, each with the row version it was read at. */
export type KnownImages = Map<string, WatchedImage>;

export interface RowsToRead {
  /** New rows, and rows written since they were read. */
  reread: string[];
  /** Known rows that are no longer the project's. */
  removed: string[];
}

/** Compares a project's row versions, just listed, with what is known. O(rows). */
export function rowsToRead(known: ReadonlyMap<string, WatchedImage>, versions: readonly ImageRowVersion[]): RowsToRead {
  const reread: string[] = [];
  let stillListed = 0;
  for (const { id, rowVersion } of versions) {
    const image = known.get(id);
    if (image) stillListed += 1;
    if (image?.rowVersion !== rowVersion) reread.push(id);
  }
  // Ids are unique: when every known row is still listed, none was removed (the usual case).
  if (stillListed === known.size) return { reread, removed: [] };
  const listed = new Set(versions.map((v) => v.id));
  return { reread, removed: [...known.keys()].filter((id) => !listed.has(id)) };
}

export interface ImageChanges {
  /** Images a client sees changed, or new: what the read brings (their rows as read), in read order. */
  changed: WatchedImage[];
  /** Known images that are gone, including rows to read again that were no longer found. */
  removed: string[];
}

/** What a read of `toRead.reread` changes, against what is known. Pure: `known` is not changed. */
export function changesOf(known: ReadonlyMap<string, WatchedImage>, toRead: RowsToRead, read: readonly WatchedImage[]): ImageChanges {
  const changed = read.filter(({ image }) => {
    const was = known.get(image.id);
    return !was || versionOf(was.image) !== versionOf(image);
  });
  const removed = [...toRead.removed];
  if (read.length < toRead.reread.length) {
    const found = new Set(read.map((r) => r.image.id));
    for (const id of toRead.reread) if (!found.has(id) && known.has(id)) removed.push(id);
  }
  return { changed, removed };
}

/** Makes `known` what was just read: every row read (changed or not: its row version moved), without the removed. */
export function applyRead(known: KnownImages, read: readonly WatchedImage[], removed: readonly string[]): void {
  for (const id of removed) known.delete(id);
  for (const row of read) known.set(row.image.id, row);
}

export function* statusesOf(known: ReadonlyMap<string, WatchedImage>): Iterable<ImageStatus> {
  for (const { image } of known.values()) yield image.status;
}

/** The known images in slot order. */
export function inSlotOrder(known: ReadonlyMap<string, WatchedImage>): StoredSceneImage[] {
  return Array.from(known.values(), (r) => r.image).sort((a, b) => a.sceneIndex - b.sceneIndex || a.imageIndex - b.imageIndex);
}

/** What a client can see change on an image; a re-signed URL alone is no change. */
export function versionOf(image: StoredSceneImage): string {
  return `${image.status}|${image.url}|${image.storageKey}|${image.updatedAt}`;
}
