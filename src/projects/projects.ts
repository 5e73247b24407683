import { createHash, randomUUID } from 'node:crypto';
import type { Pool, Sql } from '../db/database.ts';
import { claimIdempotencyKey, isActionKeyLive } from '../db/idempotency.ts';
import {
  deleteSurplusSlots,
  insertLegacyImages,
  insertQueuedSlots,
  listProjectImages,
  notifyQueued,
  requeueFailedSlots,
  requeueSceneSlots,
  sceneSlotCount,
  scenesWithRows,
  type NewSlot,
  type Queueing,
  type StoredSceneImage,
} from '../db/images.ts';
import {
  findProject,
  findProjectByIdempotencyKey,
  findProjectVersion,
  insertProject,
  lockProject,
  releaseExpiredIdempotencyKey,
  removeLegacyImageUrls,
  setScenePrompt,
  touchProject,
  type ProjectRow,
} from '../db/projects.ts';
import { lockOwnerQueue, pendingOfOwner } from '../db/owner-queue.ts';
import { keyOwnerOf, type Scope } from '../db/scope.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from '../storage/store.ts';
import { AppError, notFound } from '../errors.ts';
import { planLegacyImages } from './legacy.ts';
import { imageView, type SceneImage } from './merge.ts';
import type { ProjectCache } from './project-cache.ts';
import { projectView, settingsOf, type ProjectView } from './project-view.ts';
import { promptOf, sceneIndexOf, scenesOf } from './scene-index.ts';
import { WEBHOOK_EVENTS, type WebhookEventType } from '../db/webhooks.ts';

export interface ProjectsContext {
  sql: Pool;
  /** Serialized answers of GET /projects/:id, checked against the project's version on every read. */
  cache?: ProjectCache | undefined;
  store: ObjectStore;
  log: Logger;
  /** Tells this process's runner that slots were queued. */
  wake(): void;
  /** MAX_PENDING_SLOTS_PER_OWNER. */
  maxPendingSlotsPerOwner: number;
}

export interface CreateProjectInput {
  title?: string | undefined;
  scenes: Record<string, unknown>[];
  imagesPerScene: number;
  aspectRatio: string;
  style?: string | undefined;
  provider: string;
  model?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  webhook?: { url: string; events?: WebhookEventType[] | undefined } | undefined;
  /** A failover list (its first is `provider`). */
  providers?: string[] | undefined;
}

const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

/**
 * Stores the project and one queued slot per (scene, image) in ONE transaction, so a
 * project never exists without its slots. With an idempotency key, a retry of the same
 * request returns the first project and queues nothing; a different body is a conflict.
 */
export async function createProject(
  ctx: ProjectsContext,
  scope: Scope,
  input: CreateProjectInput,
  idempotencyKey: string | undefined,
): Promise<{ project: ProjectView; created: boolean }> {
  const { ownerId } = scope;
  if (ownerId === null) {
    throw new AppError('VALIDATION_FAILED', 'an operator creates a project for a user: send X-Owner-Id', [{ path: ['x-owner-id'], message: 'required to create a project' }]);
  }
  const requestHash = idempotencyKey ? hashRequest(input) : null;
  if (idempotencyKey) await releaseExpiredIdempotencyKey(ctx.sql, ownerId, idempotencyKey, IDEMPOTENCY_WINDOW_MS);

  const generatedOutput = { scenes: input.scenes };
  const slots: NewSlot[] = input.scenes.flatMap((scene, position) =>
    Array.from({ length: input.imagesPerScene }, (_, imageIndex) => ({
      sceneIndex: sceneIndexOf(scene, position),
      imageIndex,
      prompt: promptOf(scene) ?? '',
    })),
  );
  if (idempotencyKey && (await isActionKeyLive(ctx.sql, ownerId, idempotencyKey, IDEMPOTENCY_WINDOW_MS))) {
    throw new AppError('CONFLICT', 'this Idempotency-Key was already used for another request');
  }
  const created = await ctx.sql.begin(async (tx) => {
    const inserted = await insertProject(tx, {
      id: randomUUID(),
      ownerId,
      title: input.title ?? null,
      generatedOutput,
      settings: {
        imagesPerScene: input.imagesPerScene,
        aspectRatio: input.aspectRatio,
        style: input.style ?? null,
        provider: input.provider,
        ...(input.providers ? { providers: input.providers } : {}),
        model: input.model ?? null,
      },
      metadata: input.metadata ?? null,
      webhook: input.webhook ? { url: input.webhook.url, events: input.webhook.events ?? [...WEBHOOK_EVENTS] } : null,
      idempotencyKey: idempotencyKey ?? null,
      requestHash,
    });
    if (!inserted) return undefined;
    await withinQuota(ctx, tx, ownerId, (q) => insertQueuedSlots(tx, inserted.id, input.aspectRatio, slots, q));
    await notifyQueued(tx);
    // The answer shows the project as created (all queued), read before any runner can claim.
    return viewOf(ctx.store, tx, inserted);
  });

  if (!created) {
    // The key was used before (maybe by a concurrent twin of this request).
    const first = await findProjectByIdempotencyKey(ctx.sql, ownerId, idempotencyKey!);
    if (!first) throw new AppError('CONFLICT', 'a request with this Idempotency-Key is being processed; retry');
    if (first.requestHash !== requestHash) {
      throw new AppError('CONFLICT', 'this Idempotency-Key was already used with a different request body');
    }
    return { project: await viewOf(ctx.store, ctx.sql, first), created: false };
  }
  ctx.wake();
  return { project: created, created: true };
}

export async function getProject(ctx: Pick<ProjectsContext, 'sql' | 'store'>, scope: Scope, id: string): Promise<ProjectView> {
  const row = await findProject(ctx.sql, scope, id);
  if (!row) throw notFound('project');
  return viewOf(ctx.store, ctx.sql, row);
}

/**
 * GET /projects/:id as serialized JSON, with its version (for ETag). Reads the version
 * first, then the data, so cached data is never older than the version it is filed under;
 * a later change gives a new version and the next read misses.
 */
export async function readProjectJson(
  ctx: Pick<ProjectsContext, 'sql' | 'store' | 'cache'>,
  scope: Scope,
  id: string,
): Promise<{ json: string; version: string }> {
  const version = await findProjectVersion(ctx.sql, scope, id);
  if (version === undefined) throw notFound('project');
  const cached = ctx.cache?.get(id, version);
  if (cached !== undefined) return { json: cached, version };
  const json = JSON.stringify(await getProject(ctx, scope, id));
  ctx.cache?.set(id, version, json);
  return { json, version };
}

async function viewOf(store: ObjectStore, sql: Sql, row: ProjectRow): Promise<ProjectView> {
  return projectView(row, await readableImages(store, await listProjectImages(sql, row.id)));
}

/**
 * Images of a private store have no permanent URL: each read signs fresh ones, all of the
 * project's in one call, for every row that has a stored object (also rows stored while the
 * store was public: their saved URL no longer opens). Rows without an object (legacy URLs)
 * keep theirs.
 */
export async function readableImages(store: ObjectStore, images: StoredSceneImage[]): Promise<SceneImage[]> {
  const keys = store.private && store.signUrls ? images.flatMap((i) => (i.storageKey ? [i.storageKey] : [])) : [];
  const signed = keys.length > 0 ? await store.signUrls!(keys) : new Map<string, string>();
  return images.map((image) => {
    const url = image.storageKey ? (signed.get(image.storageKey) ?? image.url) : image.url;
    const shown = imageView(image, url) as SceneImage;
    shown.sceneIndex = image.sceneIndex;
    return shown;
  });
}

/**
 * Queues every slot that has no image being made or made: failed slots, and every slot of
 * scenes that never had any (e.g. a legacy project). Scenes that have rows keep their slot
 * count (a regenerate may have changed it).
 */
export async function generateMissing(ctx: ProjectsContext, scope: Scope, id: string, idempotencyKey?: string): Promise<ProjectView> {
  const queued = await ctx.sql.begin(async (tx) => {
    const project = await lockProject(tx, scope, id);
    if (!project) throw notFound('project');
    if (!(await claimActionKey(tx, keyOwnerOf(scope), id, idempotencyKey, `generate:${id}`, {}))) return false;
    const settings = settingsOf(project.settings);
    const withRows = await scenesWithRows(tx, id);
    const plan = planLegacyImages(project.generatedOutput);
    const scenes = scenesOf(project.generatedOutput);
    const slots: NewSlot[] = [];
    for (const { position, sceneIndex, legacyLength } of plan.scenes) {
      if (withRows.has(sceneIndex)) continue;
      withRows.add(sceneIndex); // a duplicated index gets its slots once
      const count = Math.max(settings.imagesPerScene, legacyLength);
      const prompt = promptOf(scenes[position]) ?? '';
      for (let imageIndex = 0; imageIndex < count; imageIndex++) slots.push({ sceneIndex, imageIndex, prompt });
    }
    // Legacy images first: their slots then already exist and are not queued.
    await insertLegacyImages(tx, id, plan.images.filter((image) => slots.some((s) => s.sceneIndex === image.sceneIndex)));
    const scenePrompts = plan.scenes.flatMap(({ position, sceneIndex }) => {
      const prompt = promptOf(scenes[position]);
      return prompt ? [{ sceneIndex, prompt }] : [];
    });
    await withinQuota(ctx, tx, project.userId ?? scope.ownerId, async (q) => {
      await insertQueuedSlots(tx, id, settings.aspectRatio, slots, q);
      await requeueFailedSlots(tx, id, scenePrompts, q);
    });
    await touchProject(tx, id);
    await notifyQueued(tx);
    return true;
  });
  if (queued) ctx.wake();
  return getProject(ctx, scope, id);
}

/**
 * Queues a new generation of every slot of one scene. Each slot keeps serving its current
 * image until its new one succeeds. A new prompt replaces the scene's prompt in the stored
 * JSON; a smaller imagesPerScene removes the surplus slots. Other scenes are untouched.
 */
export async function regenerateScene(
  ctx: ProjectsContext,
  scope: Scope,
  id: string,
  sceneIndex: number,
  change: { prompt?: string | undefined; imagesPerScene?: number | undefined },
  idempotencyKey?: string,
): Promise<ProjectView> {
  const removedKeys = await ctx.sql.begin(async (tx) => {
    const project = await lockProject(tx, scope, id);
    if (!project) throw notFound('project');
    const body = { prompt: change.prompt ?? null, imagesPerScene: change.imagesPerScene ?? null };
    if (!(await claimActionKey(tx, keyOwnerOf(scope), id, idempotencyKey, `regenerate:${id}:${sceneIndex}`, body))) return undefined;
    const scenes = scenesOf(project.generatedOutput);
    const position = scenes.findIndex((scene, i) => sceneIndexOf(scene, i) === sceneIndex);
    if (position < 0) throw notFound(`scene ${sceneIndex}`);
    const scene = scenes[position];
    const prompt = change.prompt?.trim() ?? promptOf(scene) ?? '';
    if (change.prompt !== undefined) await setScenePrompt(tx, id, position, change.prompt);

    // A legacy scene is adopted: its images get rows (served until replaced) and its JSON
    // copy of them goes, since from now on the rows are the whole truth for this scene.
    const legacyLength = planLegacyImages(project.generatedOutput).scenes[position]?.legacyLength ?? 0;
    const withRows = await scenesWithRows(tx, id);
    if (!withRows.has(sceneIndex)) {
      const legacy = planLegacyImages(project.generatedOutput).images.filter((image) => image.sceneIndex === sceneIndex);
      await insertLegacyImages(tx, id, legacy);
    }
    if (legacyLength > 0) await removeLegacyImageUrls(tx, [{ projectId: id, positions: [position] }]);
    const currentCount = Math.max(await sceneSlotCount(tx, id, sceneIndex), legacyLength);
    const count = change.imagesPerScene ?? (currentCount > 0 ? currentCount : settingsOf(project.settings).imagesPerScene);

    const missing = Array.from({ length: count }, (_, imageIndex) => ({ sceneIndex, imageIndex, prompt }));
    await withinQuota(ctx, tx, project.userId ?? scope.ownerId, async (q) => {
      await requeueSceneSlots(tx, id, sceneIndex, count, prompt, q);
      await insertQueuedSlots(tx, id, settingsOf(project.settings).aspectRatio, missing, q);
    });
    const removed = await deleteSurplusSlots(tx, id, sceneIndex, count);
    await touchProject(tx, id);
    await notifyQueued(tx);
    return removed;
  });
  if (removedKeys === undefined) return getProject(ctx, scope, id); // a retry: nothing was done
  ctx.wake();
  if (removedKeys.length > 0) {
    // After commit: no row references these objects any more.
    await ctx.store.remove(removedKeys).catch((err) => ctx.log.warn({ err, keys: removedKeys }, 'could not remove surplus images'));
  }
  return getProject(ctx, scope, id);
}

/**
 * Adds an owner's pending slots (inside the caller's transaction): serialises with the owner's
 * other such transactions, ranks the new slots fairly (see Queueing), and refuses with
 * QUOTA_EXCEEDED, rolling back everything the transaction did, when they take the owner past
 * MAX_PENDING_SLOTS_PER_OWNER (an owner already past it, e.g. after the limit was lowered, may
 * still do what adds nothing). An operator acting on an unowned project has no quota.
 */
async function withinQuota<T>(ctx: ProjectsContext, tx: Sql, ownerId: string | null, queue: (q: Queueing) => Promise<T>): Promise<T> {
  if (ownerId === null) return queue({ ownerId: null, spacing: 1 });
  await lockOwnerQueue(tx, ownerId);
  const before = await pendingOfOwner(tx, ownerId);
  const result = await queue({ ownerId, spacing: Math.max(1, before.waitingProjects) });
  const after = await pendingOfOwner(tx, ownerId);
  const max = ctx.maxPendingSlotsPerOwner;
  if (after.slots > max && after.slots > before.slots) {
    throw new AppError(
      'QUOTA_EXCEEDED',
      `this would make ${after.slots} images queued or generating at once; the limit is ${max} (${before.slots} now): wait for some to finish`,
    );
  }
  return result;
}

/**
 * Claims the Idempotency-Key of an action on a project, inside the action's transaction and
 * after the project's lock. True: do the action. False: this same request was done before
 * (within the window): do nothing, answer with the project as it is now.
 */
async function claimActionKey(tx: Sql, ownerId: string, projectId: string, key: string | undefined, scope: string, body: Record<string, unknown>): Promise<boolean> {
  if (key === undefined) return true;
  const requestHash = createHash('sha256').update(JSON.stringify([scope, body])).digest('hex');
  const outcome = await claimIdempotencyKey(tx, { ownerId, key, scope, requestHash, projectId, windowMs: IDEMPOTENCY_WINDOW_MS });
  if (outcome === 'conflict') throw new AppError('CONFLICT', 'this Idempotency-Key was already used for another request (another action, project, scene or body)');
  return outcome === 'new';
}

function hashRequest(input: CreateProjectInput): string {
  return createHash('sha256').update(JSON.stringify(input)).digest('hex');
}
