/** The largest scene index a slot can have (scene_index is a PostgreSQL integer). */
export const MAX_SCENE_INDEX = 2_147_483_647;

/**
 * The index of a scene: `scene.index` when it is a usable integer (0..MAX_SCENE_INDEX), else its
 * position + 1. The read path, the queueing path and the legacy backfill all use this one
 * rule, so a legacy URL lands on the same slot that a read would show it in.
 */
export function sceneIndexOf(scene: unknown, position: number): number {
  if (scene !== null && typeof scene === 'object' && !Array.isArray(scene)) {
    const index = (scene as Record<string, unknown>).index;
    if (typeof index === 'number' && Number.isInteger(index) && index >= 0 && index <= MAX_SCENE_INDEX) return index;
  }
  return position + 1;
}

/** The scenes array of a stored generated_output, or [] for any other shape. */
export function scenesOf(generatedOutput: unknown): unknown[] {
  if (generatedOutput === null || typeof generatedOutput !== 'object' || Array.isArray(generatedOutput)) return [];
  const scenes = (generatedOutput as Record<string, unknown>).scenes;
  return Array.isArray(scenes) ? scenes : [];
}

/** The prompt of a stored scene, trimmed, or undefined when it has none. */
export function promptOf(scene: unknown): string | undefined {
  if (scene === null || typeof scene !== 'object') return undefined;
  const prompt = (scene as Record<string, unknown>).prompt;
  if (typeof prompt !== 'string' || prompt.trim() === '') return undefined;
  return prompt.trim();
}
