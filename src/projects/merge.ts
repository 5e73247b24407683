import type { ImageStatus } from './progress.ts';
import { legacyUrl } from './legacy.ts';
import { sceneIndexOf, scenesOf } from './scene-index.ts';

/** One row of generated_images as the API shows it (`images[]` of a scene). */
export interface ImageView {
  id: string;
  imageIndex: number;
  status: ImageStatus;
  url: string | null;
  width: number | null;
  height: number | null;
  mimeType: string | null;
  bytes: number | null;
  provider: string | null;
  model: string | null;
  seed: number | null;
  attempts: number;
  error: string | null;
  /** Made from a prompt other than its scene's current one. */
  stale: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface SceneImage extends ImageView {
  sceneIndex: number;
}

export type SceneView = Record<string, unknown> & {
  /** The scene's effective index (sceneIndexOf), whether or not it was stored. */
  index: number;
  imageUrls: (string | null)[];
  images: ImageView[];
  /** How many of the scene's images are stale. */
  staleImages: number;
};

export interface GeneratedOutputView extends Record<string, unknown> {
  scenes: SceneView[];
}

/**
 * Merges the rows of generated_images into the stored scene JSON. Every scene keeps every
 * field it was stored with, and carries `index`, its effective index (sceneIndexOf), so a
 * client always knows which index to regenerate; the stored JSON is not rewritten. Rows win: a scene that has rows gets `images` from them and
 * `imageUrls[i]` = the URL of image i (null while it has none). A scene without rows keeps
 * the legacy `imageUrls` of the stored JSON (usable URLs only, anything else null). The
 * number of slots of a scene is the larger of its rows' and its legacy array's, so a read
 * answers the same before a backfill (legacy) and after it (rows). Top-level fields other
 * than `scenes` pass through. Pure: no I/O, input is not mutated.
 */
export function mergeScenes(generatedOutput: unknown, images: readonly SceneImage[]): GeneratedOutputView {
  const byScene = new Map<number, ImageView[]>();
  for (const image of images) {
    const view = imageView(image);
    const list = byScene.get(image.sceneIndex);
    if (list) list.push(view);
    else byScene.set(image.sceneIndex, [view]);
  }
  for (const list of byScene.values()) list.sort((a, b) => a.imageIndex - b.imageIndex);

  const top = isRecord(generatedOutput) ? generatedOutput : {};
  const scenes = scenesOf(generatedOutput).map((scene, position): SceneView => {
    const fields = isRecord(scene) ? scene : { value: scene };
    const index = sceneIndexOf(scene, position);
    const rows = byScene.get(index);
    if (!rows) {
      return { ...fields, index, imageUrls: legacyUrls(fields.imageUrls), images: [], staleImages: 0 };
    }
    const legacyLength = Array.isArray(fields.imageUrls) ? fields.imageUrls.length : 0;
    const slots = Math.max(rows.length === 0 ? 0 : rows[rows.length - 1]!.imageIndex + 1, legacyLength);
    const imageUrls: (string | null)[] = new Array(slots).fill(null);
    for (const row of rows) imageUrls[row.imageIndex] = row.url;
    return { ...fields, index, imageUrls, images: rows, staleImages: rows.filter((row) => row.stale).length };
  });
  return { ...top, scenes };
}

/**
 * An image as a scene shows it: the fields of ImageView and nothing else (a row's scene index
 * or storage key stays out). Written out rather than with an object rest, which V8 runs several
 * times slower, and a cold read copies every image of the project.
 */
export function imageView(i: ImageView, url: string | null = i.url): ImageView {
  return {
    id: i.id,
    imageIndex: i.imageIndex,
    status: i.status,
    url,
    width: i.width,
    height: i.height,
    mimeType: i.mimeType,
    bytes: i.bytes,
    provider: i.provider,
    model: i.model,
    seed: i.seed,
    attempts: i.attempts,
    error: i.error,
    stale: i.stale,
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
  };
}

function legacyUrls(value: unknown): (string | null)[] {
  return Array.isArray(value) ? value.map(legacyUrl) : [];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
