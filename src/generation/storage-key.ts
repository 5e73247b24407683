const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
};

/**
 * The object key of one attempt at one slot. It names the generation and the attempt, so a
 * key is never reused: a regenerate or a retry never overwrites an object being served, and
 * an object left by a killed attempt can be told apart from the committed one.
 */
/** Every key an attempt may have stored its image under (one per image type we store). */
export function attemptKeys(k: Omit<Parameters<typeof imageKey>[0], 'mimeType'>): string[] {
  return Object.keys(EXTENSIONS).map((mimeType) => imageKey({ ...k, mimeType }));
}

export function imageKey(k: { projectId: string; sceneIndex: number; imageIndex: number; generation: number; attempt: number; mimeType: string }): string {
  const ext = EXTENSIONS[k.mimeType] ?? 'bin';
  return `projects/${k.projectId}/scene-${k.sceneIndex}/image-${k.imageIndex}-g${k.generation}-a${k.attempt}.${ext}`;
}
