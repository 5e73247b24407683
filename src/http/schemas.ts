import { z } from '@hono/zod-openapi';
import { ASPECT_RATIOS } from '../generation/aspect-ratio.ts';
import { ERROR_CODES } from '../errors.ts';
import { IMAGE_STATUSES } from '../projects/progress.ts';
import { MAX_SCENE_INDEX } from '../projects/scene-index.ts';
import { WEBHOOK_EVENTS } from '../db/webhooks.ts';

const PROJECT_STATUSES = ['queued', 'running', 'completed', 'partial', 'failed'] as const;
const METADATA_MAX_BYTES = 16 * 1024;

const trimmedLength = (min: number, max: number) =>
  z.string().refine((s) => s.trim().length >= min && s.trim().length <= max, {
    message: `must be ${min}..${max} characters after trimming`,
  });

/** A scene: a prompt, an optional index, and any other fields, kept verbatim. */
export const SceneInput = z
  .looseObject({
    prompt: trimmedLength(1, 4000),
    index: z.number().int().min(0).max(MAX_SCENE_INDEX).optional().openapi({ description: 'Defaults to position + 1' }),
  })
  .openapi('SceneInput');

export const CreateProjectBody = z
  .strictObject({
    title: z.string().max(200).optional(),
    scenes: z.array(SceneInput).min(1).max(200),
    imagesPerScene: z.number().int().min(1).max(8).default(1),
    aspectRatio: z.enum(ASPECT_RATIOS).default('16:9'),
    style: z.string().max(200).optional(),
    provider: z.string().min(1).max(100).optional(),
    providers: z
      .array(z.string().min(1).max(100))
      .min(1)
      .max(5)
      .refine((list) => new Set(list).size === list.length, 'must not name a provider twice')
      .optional()
      .openapi({ description: 'Failover, in order: a slot goes to the first whose circuit is closed (instead of provider)' }),
    model: z.string().min(1).max(200).optional(),
    metadata: z
      .record(z.string(), z.unknown())
      .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES, { message: 'must be at most 16 KiB as JSON' })
      .optional(),
    webhook: z
      .strictObject({
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2000),
        events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length).optional().openapi({ description: 'Default: all of them' }),
      })
      .optional()
      .openapi({ description: 'Told of every event of this project (Standard Webhooks signatures, with WEBHOOK_SECRET)' }),
  })
  .superRefine((body, ctx) => {
    const seen = new Map<number, number>();
    body.scenes.forEach((scene, position) => {
      const index = scene.index ?? position + 1;
      const first = seen.get(index);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['scenes', position, 'index'], message: `duplicate scene index ${index} (also scene ${first})` });
      } else seen.set(index, position);
    });
  })
  .openapi('CreateProject');

export const RegenerateBody = z
  .strictObject({
    prompt: trimmedLength(1, 4000).optional(),
    imagesPerScene: z.number().int().min(1).max(8).optional(),
  })
  .openapi('RegenerateScene');

export const ProjectIdParam = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
});

export const SceneParams = ProjectIdParam.extend({
  sceneIndex: z.coerce.number().int().min(0).max(MAX_SCENE_INDEX).openapi({ param: { name: 'sceneIndex', in: 'path' }, type: 'integer' }),
});

export const IdempotencyHeaders = z.object({
  'idempotency-key': z.string().min(1).max(200).optional().openapi({ param: { name: 'idempotency-key', in: 'header' }, description: 'Same key + same body within 24 h: the first answer, nothing queued again' }),
});

export const ListProjectsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(500).optional(),
  status: z.enum(PROJECT_STATUSES).optional(),
});

export const Progress = z
  .object({ total: z.number(), queued: z.number(), running: z.number(), succeeded: z.number(), failed: z.number() })
  .openapi('Progress');

export const Image = z
  .object({
    id: z.uuid(),
    imageIndex: z.number().int(),
    status: z.enum(IMAGE_STATUSES),
    url: z.string().nullable(),
    width: z.number().nullable(),
    height: z.number().nullable(),
    mimeType: z.string().nullable(),
    bytes: z.number().nullable(),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    seed: z.number().nullable(),
    attempts: z.number().int(),
    error: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Image');

export const Scene = z
  .looseObject({ index: z.number().int(), imageUrls: z.array(z.string().nullable()), images: z.array(Image) })
  .openapi('Scene', { description: 'The scene as it was sent, plus its effective index, imageUrls and images' });

export const Project = z
  .object({
    id: z.uuid(),
    title: z.string().nullable(),
    status: z.enum(PROJECT_STATUSES),
    createdAt: z.string(),
    updatedAt: z.string(),
    settings: z.object({
      imagesPerScene: z.number().int(),
      aspectRatio: z.string(),
      style: z.string().nullable(),
      provider: z.string().nullable(),
      model: z.string().nullable(),
    }),
    metadata: z.unknown(),
    progress: Progress,
    generatedOutput: z.looseObject({ scenes: z.array(Scene) }),
  })
  .openapi('Project');

export const ProjectList = z
  .object({
    items: z.array(
      z.object({
        id: z.uuid(),
        title: z.string().nullable(),
        status: z.enum(PROJECT_STATUSES),
        progress: Progress,
        createdAt: z.string(),
        updatedAt: z.string(),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .openapi('ProjectList');

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      requestId: z.string(),
      details: z.array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() })),
    }),
  })
  .openapi('Error');
