import { sceneIndexOf, scenesOf } from './scene-index.ts';

/**
 * Legacy data: image URLs that lived only in generated_output.scenes[].imageUrls. The read
 * path (fallback), the queueing paths (adopting a legacy scene) and the backfill all read
 * it through these functions, so they agree on every messy shape it can take.
 */

export const SKIP_REASONS = [
  'output_not_object',
  'scenes_missing',
  'scenes_not_array',
  'scene_not_object',
  'image_urls_missing',
  'image_urls_null',
  'image_urls_not_array',
  'duplicate_scene_index',
  'entry_null',
  'entry_empty',
  'entry_not_string',
  'entry_not_url',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export interface LegacyImage {
  sceneIndex: number;
  imageIndex: number;
  url: string;
}

export interface LegacySkip {
  /** The scene's position in the array (0-based); null for project-level problems. */
  scene: number | null;
  sceneIndex: number | null;
  imageIndex: number | null;
  reason: SkipReason;
}

const DATA_IMAGE = /^data:image\/[a-z0-9.+-]+;base64,[A-Za-z0-9+/]+={0,2}$/i;

/** A legacy imageUrls entry: its URL when it is a usable one (http(s), or an inline base64 image), else why not. */
export function legacyEntry(entry: unknown): { url: string } | { reason: SkipReason } {
  if (entry === null || entry === undefined) return { reason: 'entry_null' };
  if (typeof entry !== 'string') return { reason: 'entry_not_string' };
  const value = entry.trim();
  if (value === '') return { reason: 'entry_empty' };
  if (value.startsWith('data:')) return DATA_IMAGE.test(value) ? { url: value } : { reason: 'entry_not_url' };
  try {
    const url = new URL(value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '') return { url: value };
  } catch {
    // not a URL
  }
  return { reason: 'entry_not_url' };
}

/** The URL a read shows for a legacy entry: usable URLs as they are, anything else null. */
export function legacyUrl(entry: unknown): string | null {
  const e = legacyEntry(entry);
  return 'url' in e ? e.url : null;
}

export interface LegacyPlan {
  images: LegacyImage[];
  skipped: LegacySkip[];
  /** Per scene position: its index and the length of its legacy imageUrls array (0 if none). */
  scenes: { position: number; sceneIndex: number; legacyLength: number; duplicateIndex: boolean }[];
}

/**
 * What a project's stored JSON holds in legacy images, and what cannot be used (with the
 * reason). Nothing is guessed: a scene whose index is shared with another scene is skipped,
 * since its images could belong to either.
 */
export function planLegacyImages(generatedOutput: unknown): LegacyPlan {
  const plan: LegacyPlan = { images: [], skipped: [], scenes: [] };
  const project = (reason: SkipReason) => plan.skipped.push({ scene: null, sceneIndex: null, imageIndex: null, reason });
  if (generatedOutput === null || typeof generatedOutput !== 'object' || Array.isArray(generatedOutput)) {
    project('output_not_object');
    return plan;
  }
  const raw = (generatedOutput as Record<string, unknown>).scenes;
  if (raw === undefined || raw === null) {
    project('scenes_missing');
    return plan;
  }
  if (!Array.isArray(raw)) {
    project('scenes_not_array');
    return plan;
  }
  const scenes = scenesOf(generatedOutput);
  const counts = new Map<number, number>();
  scenes.forEach((scene, position) => counts.set(sceneIndexOf(scene, position), (counts.get(sceneIndexOf(scene, position)) ?? 0) + 1));

  scenes.forEach((scene, position) => {
    const sceneIndex = sceneIndexOf(scene, position);
    const duplicateIndex = (counts.get(sceneIndex) ?? 0) > 1;
    const skip = (reason: SkipReason, imageIndex: number | null = null) => plan.skipped.push({ scene: position, sceneIndex, imageIndex, reason });
    if (scene === null || typeof scene !== 'object' || Array.isArray(scene)) {
      plan.scenes.push({ position, sceneIndex, legacyLength: 0, duplicateIndex });
      return skip('scene_not_object');
    }
    const urls = (scene as Record<string, unknown>).imageUrls;
    plan.scenes.push({ position, sceneIndex, legacyLength: Array.isArray(urls) ? urls.length : 0, duplicateIndex });
    if (urls === undefined) return skip('image_urls_missing');
    if (urls === null) return skip('image_urls_null');
    if (!Array.isArray(urls)) return skip('image_urls_not_array');
    if (duplicateIndex) {
      urls.forEach((_, imageIndex) => skip('duplicate_scene_index', imageIndex));
      return;
    }
    urls.forEach((entry, imageIndex) => {
      const e = legacyEntry(entry);
      if ('url' in e) plan.images.push({ sceneIndex, imageIndex, url: e.url });
      else skip(e.reason, imageIndex);
    });
  });
  return plan;
}

/**
 * The scene positions whose legacy imageUrls may be removed from the stored JSON: every
 * usable URL has its row, nothing unusable but blanks (null, "") would be lost, and the
 * rows reach as far as the legacy array (so a read answers the same without it).
 * Duplicated-index scenes are never pruned.
 */
export function prunableScenes(plan: LegacyPlan, rowSlots: (sceneIndex: number) => ReadonlySet<number> | undefined): number[] {
  const blocked = new Set<number>();
  for (const s of plan.skipped) {
    if (s.scene !== null && s.reason !== 'entry_null' && s.reason !== 'entry_empty' && s.reason !== 'image_urls_missing') blocked.add(s.scene);
  }
  return plan.scenes.flatMap(({ position, sceneIndex, legacyLength, duplicateIndex }) => {
    if (legacyLength === 0 || duplicateIndex || blocked.has(position)) return [];
    const slots = rowSlots(sceneIndex);
    if (!slots) return [];
    const covered = plan.images.every((image) => image.sceneIndex !== sceneIndex || slots.has(image.imageIndex));
    const reach = Math.max(-1, ...slots) + 1;
    return covered && reach >= legacyLength ? [position] : [];
  });
}
