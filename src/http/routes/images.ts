import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { listImages, markFavorite, readImage, type GalleryContext } from '../../images/gallery.ts';
import { IMAGE_STATUSES } from '../../projects/progress.ts';
import type { AppEnv } from '../env.ts';
import { ImageIdParam, ImageRecord } from '../image-schemas.ts';
import { jsonBody } from '../middleware.ts';
import { ErrorBody } from '../schemas.ts';
import { validationHook } from '../validation.ts';

/** An instant with its offset; PostgreSQL has no year 0, so neither do we (a 400, not a 500). */
const instant = (description: string) =>
  z.iso
    .datetime({ offset: true })
    .refine((v) => !v.startsWith('0000'), 'year 0000 does not exist')
    .optional()
    .openapi({ description, example: '2026-01-01T00:00:00Z' });

/** PostgreSQL text cannot hold NUL: a 400, never a 500 from the driver. */
const text = (min: number, max: number) => z.string().min(min).max(max).refine((s) => !s.includes('\u0000'), 'must not contain the NUL character');

const ListImagesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(500).optional().openapi({ description: 'nextCursor of the previous page' }),
  projectId: z.uuid().optional(),
  status: z.enum(IMAGE_STATUSES).default('succeeded'),
  favorite: z.enum(['true', 'false']).optional(),
  provider: text(1, 100).optional(),
  // Empty: no search (a cleared search box).
  q: text(0, 200)
    .optional()
    .openapi({ description: 'Words of the prompt, full prompt or revised prompt (websearch_to_tsquery syntax: "a phrase", -word, or); the last word matches as a prefix unless a space follows it' }),
  createdAfter: instant('Images whose gallery time (last outcome) is at or after this instant'),
  createdBefore: instant('Images whose gallery time (last outcome) is before this instant'),
});

const ImagePage = z.object({ items: z.array(ImageRecord), nextCursor: z.string().nullable() }).openapi('ImagePage');

const FavoriteBody = z.strictObject({ favorite: z.boolean() });

const errors = {
  400: { description: 'Invalid request', content: { 'application/json': { schema: ErrorBody } } },
  404: { description: 'No such image (or not yours)', content: { 'application/json': { schema: ErrorBody } } },
} as const;
const record = (description: string) => ({ description, content: { 'application/json': { schema: ImageRecord } } });

/** The gallery: the caller's images across projects, one image's record, favorites. */
export function imageRoutes(ctx: GalleryContext) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/images',
      summary: "The caller's images across projects, newest first",
      request: { query: ListImagesQuery },
      responses: { 200: { description: 'A page of images', content: { 'application/json': { schema: ImagePage } } }, 400: errors[400] },
    }),
    async (c) => {
      const { favorite, ...query } = c.req.valid('query');
      const page = await listImages(ctx, c.get('scope'), { ...query, favorite: favorite === undefined ? undefined : favorite === 'true' });
      return c.json(page, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/images/{id}',
      summary: "An image's full record",
      request: { params: ImageIdParam },
      responses: { 200: record('The image'), 404: errors[404] },
    }),
    async (c) => c.json(await readImage(ctx, c.get('scope'), c.req.valid('param').id), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/images/{id}',
      summary: 'Mark an image favorite, or not',
      middleware: [jsonBody({ required: true })] as const,
      request: { params: ImageIdParam, body: { required: true, content: { 'application/json': { schema: FavoriteBody } } } },
      responses: { 200: record('The image as it now is'), 400: errors[400], 404: errors[404] },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      return c.json(await markFavorite(ctx, c.get('scope'), id, c.req.valid('json').favorite), 200);
    },
  );

  return app;
}
