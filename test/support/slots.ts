import { randomUUID } from 'node:crypto';
import { insertQueuedSlots } from '../../src/db/images.ts';
import { insertProject } from '../../src/db/projects.ts';
import type { Sql } from '../../src/db/database.ts';
import type { SucceededImage } from '../../src/db/queue.ts';

/** A project of one scene (prompt 'p', 1:1) with `slots` queued slots, straight into the database; its id. */
export async function insertPendingProject(sql: Sql, ownerId: string, slots: number): Promise<string> {
  const id = randomUUID();
  await insertProject(sql, {
    id,
    ownerId,
    title: null,
    generatedOutput: { scenes: [{ prompt: 'p' }] },
    settings: { imagesPerScene: slots, aspectRatio: '1:1' },
    metadata: null,
    idempotencyKey: null,
    requestHash: null,
  });
  const rows = Array.from({ length: slots }, (_, imageIndex) => ({ sceneIndex: 1, imageIndex, prompt: 'p' }));
  await insertQueuedSlots(sql, id, '1:1', rows, { ownerId, spacing: 1 });
  return id;
}

/** An image a commit (markImagesSucceeded) can store, made from prompt 'p'; `tag` names its URL and key. */
export function storedImage(tag: string): SucceededImage {
  return {
    prompt: 'p',
    url: `http://x/${tag}.png`,
    storageKey: `k/${tag}.png`,
    fullPrompt: 'p',
    provider: 'local',
    model: null,
    seed: 1,
    width: 1,
    height: 1,
    mimeType: 'image/png',
    bytes: 1,
    sha256: 'x',
    revisedPrompt: null,
    costUsd: null,
    providerRequestId: null,
  };
}
