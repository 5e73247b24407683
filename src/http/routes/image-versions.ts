import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { deleteImage, listVersions, restoreImageVersion, type ImagesContext } from '../../images/lifecycle.ts';
import type { AppEnv } from '../env.ts';
import { ImageIdParam, ImageRecord, VersionRecord } from '../image-schemas.ts';
import { noBody } from '../middleware.ts';
import { ErrorBody } from '../schemas.ts';
import { validationHook } from '../validation.ts';

const notFound = { description: 'No such image or version (or not yours)', content: { 'application/json': { schema: ErrorBody } } } as const;

/** An image's versions (kept when a regenerate replaced it), restoring one, deleting an image. */
export function imageVersionRoutes(ctx: ImagesContext) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/images/{id}/versions',
      summary: "An image slot's versions, newest first: the current image and the ones regenerates replaced",
      request: { params: ImageIdParam },
      responses: {
        200: { description: 'Versions', content: { 'application/json': { schema: z.object({ items: z.array(VersionRecord) }) } } },
        404: notFound,
      },
    }),
    async (c) => c.json({ items: await listVersions(ctx, c.get('scope'), c.req.valid('param').id) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/images/{id}/versions/{version}/restore',
      summary: 'Make a kept version current (the current image becomes a version)',
      middleware: [noBody()] as const,
      request: {
        params: ImageIdParam.extend({
          version: z.coerce.number().int().min(1).max(2_147_483_647).openapi({ param: { name: 'version', in: 'path' }, type: 'integer' }),
        }),
      },
      responses: { 200: { description: 'The image as it now is', content: { 'application/json': { schema: ImageRecord } } }, 404: notFound },
    }),
    async (c) => {
      const { id, version } = c.req.valid('param');
      return c.json(await restoreImageVersion(ctx, c.get('scope'), id, version), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/images/{id}',
      summary: 'Delete an image, its kept versions and their stored objects; its slot stays, empty',
      middleware: [noBody()] as const,
      request: { params: ImageIdParam },
      responses: { 204: { description: 'Deleted' }, 404: notFound },
    }),
    async (c) => {
      await deleteImage(ctx, c.get('scope'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  return app;
}
