import { TextReader, ZipWriter } from '@zip.js/zip.js/index-native.js';
import type { Pool } from '../db/database.ts';
import { listProjectImages, type StoredSceneImage } from '../db/images.ts';
import type { Scope } from '../db/scope.ts';
import { extensionOf, openImage, titleSlug, type FileName, type ImageOpening, type ImageReading, type ImageSource } from '../images/downloads.ts';
import type { Logger } from '../log.ts';
import { passedOn } from '../memory/dead-buffers.ts';
import { getProject } from './projects.ts';
import type { ProjectView } from './project-view.ts';

export interface ArchiveContext extends ImageReading {
  sql: Pool;
  log?: Logger | undefined;
}

/** One image to put in the archive: a slot's current image, or a legacy URL of a scene without rows. */
export interface ArchiveEntry {
  /** The slot's id, or legacy:<scene position>:<image index> for a URL that lives only in the scene JSON. */
  key: string;
  sceneIndex: number;
  imageIndex: number;
  /** The scene's position in the project, to keep apart scenes that share an index (legacy data). */
  position: number;
  source: ImageSource;
  modified: Date;
}

/** An image left out of the archive, listed in project.json's "missing". */
export interface MissingImage {
  sceneIndex: number;
  imageIndex: number;
  imageId: string | null;
  reason: string;
}

/** Images opened ahead of the one being written: the next request overlaps the current bytes. Bounded. */
const OPEN_AHEAD = 2;
/** A project changing while it is read is read again, this many times at most. */
const READS = 3;

/**
 * GET /projects/:id/archive: a ZIP of every current image (scene-<index>/image-<i>.<ext>) and
 * project.json (the project answer, each image's url and imageUrls entry the file's name inside
 * the ZIP), made while the client reads it. The project is read (scope checked, 404) before
 * anything is sent; then images are read one after the other, OPEN_AHEAD at most open at once,
 * each piped into the ZIP as it comes: memory stays flat whatever the project's size.
 *
 * An image that cannot be opened (gone, its store or its legacy URL failing) is left out and
 * listed in project.json's "missing" with the reason: the archive still comes. One that breaks
 * off once its bytes are flowing cannot be taken back: the archive then breaks off too (the
 * client sees a failed download, never a ZIP that looks whole). A client that goes away stops
 * everything: the image being read and those opened ahead are cancelled.
 */
export async function openProjectArchive(ctx: ArchiveContext, scope: Scope, id: string): Promise<{ file: FileName; body: ReadableStream<Uint8Array> }> {
  const { view, entries } = await readProject(ctx, scope, id);
  const abort = new AbortController();
  const zipped = new TransformStream<Uint8Array, Uint8Array>();
  const reader = zipped.readable.getReader();
  let output!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        output = controller;
      },
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        controller.enqueue(value);
        // A gigabyte goes through here in small chunks: dead ones are freed as we go (see passedOn).
        passedOn(value.byteLength);
      },
      async cancel(reason) {
        abort.abort(reason ?? new Error('the client stopped reading the archive'));
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
  void writeArchive(ctx, view, entries, zipped.writable, abort.signal, (err) => {
    // Errors the client's stream (a no-op once it was cancelled) and stops reading what is left.
    output.error(err);
    reader.cancel(err).catch(() => {});
  });
  const slug = titleSlug(view.title);
  return { file: { name: `${slug.name}.zip`, ascii: `${slug.ascii}.zip` }, body };
}

/**
 * The project answer and, from the same rows, what to archive. The answer (getProject) and the
 * rows with their storage keys are two reads: when an image changed between them, both are read
 * again, so project.json describes the bytes next to it.
 */
async function readProject(ctx: ArchiveContext, scope: Scope, id: string): Promise<{ view: ProjectView; entries: ArchiveEntry[] }> {
  for (let attempt = 1; ; attempt++) {
    const view = await getProject(ctx, scope, id);
    const plan = planArchive(view, await listProjectImages(ctx.sql, id));
    if (plan.consistent || attempt === READS) return { view, entries: plan.entries };
  }
}

/**
 * What the archive holds: every slot's current image (a row with a stored object or a saved URL,
 * whatever its status: a slot being regenerated still serves its image), and, for a scene without
 * rows, the legacy URLs the answer shows. An image shown by two scenes sharing an index is
 * archived once. Pure.
 */
export function planArchive(view: ProjectView, rows: readonly StoredSceneImage[]): { entries: ArchiveEntry[]; consistent: boolean } {
  const byId = new Map(rows.map((row) => [row.id, row]));
  const entries: ArchiveEntry[] = [];
  const planned = new Set<string>();
  let consistent = true;
  view.generatedOutput.scenes.forEach((scene, position) => {
    const plan = (key: string, imageIndex: number, source: ImageSource, modified: string) => {
      if (planned.has(key)) return;
      planned.add(key);
      entries.push({ key, sceneIndex: scene.index, imageIndex, position, source, modified: new Date(modified) });
    };
    for (const image of scene.images) {
      const row = byId.get(image.id);
      if (!row || row.updatedAt !== image.updatedAt) consistent = false;
      // Removed between the two reads (kept on the last read only): no source, so it is listed as missing.
      if (!row) plan(image.id, image.imageIndex, { storageKey: null, imageUrl: null, mimeType: null }, image.updatedAt);
      else if (row.storageKey !== null || row.url !== null) plan(row.id, row.imageIndex, { storageKey: row.storageKey, imageUrl: row.url, mimeType: row.mimeType }, row.updatedAt);
    }
    if (scene.images.length > 0) return;
    scene.imageUrls.forEach((url, imageIndex) => {
      if (url !== null) plan(legacyKey(position, imageIndex), imageIndex, { storageKey: null, imageUrl: url, mimeType: null }, view.updatedAt);
    });
  });
  return { entries, consistent };
}

const legacyKey = (position: number, imageIndex: number) => `legacy:${position}:${imageIndex}`;

/** project.json: the project answer with each image's url the file's name in the ZIP (null when not in it), plus what is missing. Pure. */
export function archivedProject(view: ProjectView, files: ReadonlyMap<string, string>, missing: readonly MissingImage[]): ProjectView & { missing: MissingImage[] } {
  const scenes = view.generatedOutput.scenes.map((scene, position) => ({
    ...scene,
    imageUrls: scene.imageUrls.map((_, i) => {
      const image = scene.images.find((im) => im.imageIndex === i);
      return files.get(image ? image.id : legacyKey(position, i)) ?? null;
    }),
    images: scene.images.map((image) => ({ ...image, url: files.get(image.id) ?? null })),
  }));
  return { ...view, generatedOutput: { ...view.generatedOutput, scenes }, missing: [...missing] };
}

async function writeArchive(
  ctx: ArchiveContext,
  view: ProjectView,
  entries: readonly ArchiveEntry[],
  writable: WritableStream<Uint8Array>,
  signal: AbortSignal,
  fail: (err: unknown) => void,
): Promise<void> {
  // Images are stored as they are (level 0): PNG, JPEG and WebP are compressed already.
  const zip = new ZipWriter(writable, { level: 0, useWebWorkers: false, signal });
  const files = new Map<string, string>();
  const names = new Set<string>();
  const missing: MissingImage[] = [];
  const opened = openInOrder(entries, (entry) => openImage(ctx, entry.source, signal));
  let current: ReturnType<typeof untilAborted> | undefined;
  try {
    for await (const [entry, opening] of opened) {
      if (!opening.ok) {
        missing.push({ sceneIndex: entry.sceneIndex, imageIndex: entry.imageIndex, imageId: entry.key.startsWith('legacy:') ? null : entry.key, reason: opening.reason });
        continue;
      }
      const { body, contentType, size } = opening.image;
      const name = entryName(names, entry, extensionOf(contentType, entry.source.storageKey ?? entry.source.imageUrl));
      current = untilAborted(body, signal);
      await zip.add(name, current.stream, { lastModDate: entry.modified, signal, ...(size !== undefined ? { uncompressedSize: size } : {}) });
      current = undefined;
      files.set(entry.key, name);
    }
    const json = JSON.stringify(archivedProject(view, files, missing), null, 2);
    await zip.add('project.json', new TextReader(json), { level: 6, signal });
    await zip.close();
  } catch (err) {
    // We MUST release every image still open, whatever threw: the one being written, those opened ahead.
    current?.stop(err);
    await opened.return(undefined);
    fail(err);
    if (!signal.aborted) ctx.log?.warn({ err, projectId: view.id }, 'project archive broke off');
  }
}

/** scene-<index>/image-<i>.<ext>; a second scene with the same index (legacy data) gets scene-<index>-<position>/. */
function entryName(names: Set<string>, entry: ArchiveEntry, ext: string): string {
  let name = `scene-${entry.sceneIndex}/image-${entry.imageIndex}.${ext}`;
  if (names.has(name)) name = `scene-${entry.sceneIndex}-${entry.position + 1}/image-${entry.imageIndex}.${ext}`;
  names.add(name);
  return name;
}

/**
 * Opens the entries in order, at most OPEN_AHEAD at once, and yields each with its opening. When
 * the consumer stops early (return(), or a throw in its loop), images opened but not yet yielded
 * are cancelled as their openings settle: nothing is left holding a file or a connection.
 */
async function* openInOrder(entries: readonly ArchiveEntry[], open: (entry: ArchiveEntry) => Promise<ImageOpening>): AsyncGenerator<[ArchiveEntry, ImageOpening], void, undefined> {
  const pending: [ArchiveEntry, Promise<ImageOpening>][] = [];
  let next = 0;
  try {
    while (next < entries.length || pending.length > 0) {
      while (pending.length < OPEN_AHEAD && next < entries.length) {
        const entry = entries[next++]!;
        pending.push([entry, open(entry)]);
      }
      const [entry, opening] = pending.shift()!;
      yield [entry, await opening];
    }
  } finally {
    for (const [, opening] of pending) {
      void opening.then(
        (o) => {
          if (o.ok) o.image.body.cancel().catch(() => {});
        },
        () => {},
      );
    }
  }
}

/**
 * `body`, until `signal` aborts: then the source is cancelled and the stream errors, also when a
 * read is waiting (a cancelled source ends a waiting read as if the image were complete: never
 * taken for its end). stop() releases the source from outside.
 */
function untilAborted(body: ReadableStream<Uint8Array>, signal: AbortSignal): { stream: ReadableStream<Uint8Array>; stop: (reason: unknown) => void } {
  const reader = body.getReader();
  let released = false;
  const stop = (reason: unknown) => {
    if (released) return;
    released = true;
    signal.removeEventListener('abort', onAbort);
    reader.cancel(reason).catch(() => {});
  };
  const onAbort = () => stop(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (signal.aborted) throw signal.reason;
          if (!done) return controller.enqueue(value);
          released = true;
          signal.removeEventListener('abort', onAbort);
          controller.close();
        } catch (err) {
          stop(err);
          controller.error(err);
        }
      },
      cancel: stop,
    },
    { highWaterMark: 0 },
  );
  return { stream, stop };
}
