import { z } from '@hono/zod-openapi';
import { IMAGE_STATUSES } from '../projects/progress.ts';

/** The contract's ImageRecord (src/images/record.ts), as published in OpenAPI. */
export const ImageRecord = z
  .object({
    id: z.uuid(),
    projectId: z.uuid(),
    projectTitle: z.string().nullable(),
    sceneIndex: z.number().int(),
    imageIndex: z.number().int(),
    status: z.enum(IMAGE_STATUSES),
    url: z.string().nullable(),
    width: z.number().nullable(),
    height: z.number().nullable(),
    mimeType: z.string().nullable(),
    bytes: z.number().nullable(),
    sha256: z.string().nullable(),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    seed: z.number().nullable(),
    attempts: z.number().int(),
    error: z.string().nullable(),
    prompt: z.string().nullable(),
    fullPrompt: z.string().nullable(),
    revisedPrompt: z.string().nullable(),
    style: z.string().nullable(),
    aspectRatio: z.string().nullable(),
    providerRequestId: z.string().nullable(),
    favorite: z.boolean(),
    stale: z.boolean().openapi({ description: "Made from a prompt other than its scene's current one" }),
    version: z.number().int().nullable().openapi({ description: 'The image version in its slot; null while the slot has no image' }),
    timings: z.object({ queuedAt: z.string().nullable(), startedAt: z.string().nullable(), finishedAt: z.string().nullable() }),
    costUsd: z.number().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('ImageRecord');

export const VersionRecord = ImageRecord.extend({ current: z.boolean() }).openapi('ImageVersion');

export const ImageIdParam = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
});
