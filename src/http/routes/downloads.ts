import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Pool } from '../../db/database.ts';
import { attachment, downloadImage, LEGACY_FETCH_DEFAULTS, type LegacyFetchOptions } from '../../images/downloads.ts';
import { openProjectArchive } from '../../projects/archive.ts';
import type { ObjectStore } from '../../storage/store.ts';
import type { AppEnv } from '../env.ts';
import { ImageIdParam } from '../image-schemas.ts';
import { ErrorBody, ProjectIdParam } from '../schemas.ts';
import { validationHook } from '../validation.ts';

export interface DownloadRoutesDeps {
  sql: Pool;
  store: ObjectStore;
  /** How images that have only a legacy URL are fetched; default LEGACY_FETCH_DEFAULTS. */
  legacy?: Partial<LegacyFetchOptions> | undefined;
}

const error = (description: string) => ({ description, content: { 'application/json': { schema: ErrorBody } } });
const binary = z.string().openapi({ type: 'string', format: 'binary' });

/** Downloads: one image with a readable file name, and a whole project as a ZIP made as it is sent. */
export function downloadRoutes(deps: DownloadRoutesDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const reading = { sql: deps.sql, store: deps.store, legacy: { ...LEGACY_FETCH_DEFAULTS, ...deps.legacy } };

  app.openapi(
    createRoute({
      method: 'get',
      path: '/images/{id}/download',
      summary: "An image's bytes, as an attachment named <title>-scene-<index>-image-<n>.<ext>",
      description:
        'Read through the store whether it is public or private; an image saved only as a legacy URL is fetched by the service. ' +
        '404 when the slot has no image or the image is gone (no stored object, its URL answers 404 or 410); 503 when its store or its URL fails now.',
      request: { params: ImageIdParam },
      responses: {
        200: { description: 'The image', content: { 'image/*': { schema: binary } } },
        400: error('Invalid request'),
        404: error('No such image, not yours, or gone'),
        503: error('The image cannot be read now (its store or its legacy URL fails)'),
      },
    }),
    async (c) => {
      const image = await downloadImage(reading, c.get('scope'), c.req.valid('param').id, c.req.raw.signal);
      const headers: Record<string, string> = {
        'Content-Type': image.contentType,
        'Content-Disposition': attachment(image.file),
        // The slot's image changes on regenerate and restore: the same URL, other bytes.
        'Cache-Control': 'private, no-cache',
      };
      if (image.size !== undefined) headers['Content-Length'] = String(image.size);
      return c.body(image.body, 200, headers) as never;
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/projects/{id}/archive',
      summary: 'Every current image of the project and project.json, as a ZIP streamed as it is made',
      description:
        'Entries scene-<index>/image-<i>.<ext> (i: the image index, from 0) and project.json: the project answer with each image url ' +
        'and imageUrls entry the file name inside the ZIP, and "missing": images that could not be read (scene, image, reason), left out.',
      request: { params: ProjectIdParam },
      responses: {
        200: { description: 'The ZIP', content: { 'application/zip': { schema: binary } } },
        400: error('Invalid request'),
        404: error('No such project (or not yours)'),
      },
    }),
    async (c) => {
      const archive = await openProjectArchive({ ...reading, log: c.get('log') }, c.get('scope'), c.req.valid('param').id);
      return c.body(archive.body, 200, {
        'Content-Type': 'application/zip',
        'Content-Disposition': attachment(archive.file),
        'Cache-Control': 'private, no-store',
      }) as never;
    },
  );

  return app;
}
