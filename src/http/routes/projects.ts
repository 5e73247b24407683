import { createHash } from 'node:crypto';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { AppError, notFound } from '../../errors.ts';
import {
  createProject,
  generateMissing,
  readProjectJson,
  regenerateScene,
  type ProjectsContext,
} from '../../projects/projects.ts';
import { toIso } from '../../db/database.ts';
import { projectCost } from '../../db/projects.ts';
import { listWebhookDeliveries } from '../../db/webhooks.ts';
import { deleteProject } from '../../projects/deletion.ts';
import { listProjects } from '../../projects/project-list.ts';
import { patchScene } from '../../projects/scene-patch.ts';
import type { AppEnv } from '../env.ts';
import { jsonBody, noBody } from '../middleware.ts';
import {
  CreateProjectBody,
  ErrorBody,
  IdempotencyHeaders,
  ListProjectsQuery,
  Project,
  ProjectIdParam,
  ProjectList,
  RegenerateBody,
  SceneParams,
} from '../schemas.ts';
import { validationHook } from '../validation.ts';

export interface ProjectRoutesDeps {
  projects: ProjectsContext;
  providerNames: readonly string[];
  /** WEBHOOK_SECRET is set: projects may name a webhook. */
  webhooksEnabled?: boolean | undefined;
  defaultProvider: string;
}

const errors = {
  400: { description: 'Invalid request', content: { 'application/json': { schema: ErrorBody } } },
  404: { description: 'No such project (or not yours)', content: { 'application/json': { schema: ErrorBody } } },
} as const;

const idempotencyConflict = {
  description: 'Idempotency-Key already used for another request (another action, project, scene or body)',
  content: { 'application/json': { schema: ErrorBody } },
} as const;

const projectResponse = (description: string) => ({ description, content: { 'application/json': { schema: Project } } });

export function projectRoutes(deps: ProjectRoutesDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(
    createRoute({
      method: 'post',
      path: '/projects',
      summary: 'Create a project and queue every image of every scene',
      middleware: [jsonBody({ required: true })] as const,
      request: {
        headers: IdempotencyHeaders,
        body: { required: true, content: { 'application/json': { schema: CreateProjectBody } } },
      },
      responses: {
        202: projectResponse('Accepted: generation runs in the background'),
        400: errors[400],
        409: { description: 'Idempotency-Key reused with another body', content: { 'application/json': { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      if (body.provider !== undefined && body.providers !== undefined) {
        throw new AppError('VALIDATION_FAILED', 'name either provider or providers (a failover list), not both', [{ path: ['providers'], message: 'not with provider' }]);
      }
      const provider = body.providers?.[0] ?? body.provider ?? deps.defaultProvider;
      for (const [i, name] of (body.providers ?? [provider]).entries()) {
        if (!deps.providerNames.includes(name)) {
          throw new AppError('VALIDATION_FAILED', `provider "${name}" is not configured; configured: ${deps.providerNames.join(', ')}`, [
            { path: body.providers ? ['providers', i] : ['provider'], message: `must be one of: ${deps.providerNames.join(', ')}` },
          ]);
        }
      }
      if (body.webhook && !deps.webhooksEnabled) {
        throw new AppError('VALIDATION_FAILED', 'this service sends no webhooks: its operator has not set WEBHOOK_SECRET', [{ path: ['webhook'], message: 'webhooks are not configured' }]);
      }
      const key = c.req.valid('header')['idempotency-key'];
      // Scenes and metadata are stored as sent, key for key: from the body itself, not the validator's copy.
      const sent = c.get('body') as Pick<z.infer<typeof CreateProjectBody>, 'scenes' | 'metadata'>;
      const input = { ...body, scenes: sent.scenes, metadata: sent.metadata, provider };
      const { project } = await createProject(deps.projects, c.get('scope'), input, key);
      c.header('Location', `/projects/${project.id}`);
      return c.json(project as z.infer<typeof Project>, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/projects',
      summary: "The caller's projects, newest first",
      request: { query: ListProjectsQuery },
      responses: { 200: { description: 'A page of projects', content: { 'application/json': { schema: ProjectList } } }, 400: errors[400] },
    }),
    async (c) => c.json(await listProjects(deps.projects, c.get('scope'), c.req.valid('query')), 200),
  );

  for (const path of ['/projects/{id}', '/project/{id}'] as const) {
    app.openapi(
      createRoute({
        method: 'get',
        path,
        summary: path.startsWith('/project/') ? 'Same as GET /projects/{id} (legacy path)' : 'A project with its scenes merged with their images',
        request: { params: ProjectIdParam },
        responses: { 200: projectResponse('The project'), 304: { description: 'Not modified since the ETag sent in If-None-Match' }, 404: errors[404] },
      }),
      async (c) => {
        const { json, version } = await readProjectJson(deps.projects, c.get('scope'), c.req.valid('param').id);
        const etag = `W/"${createHash('sha256').update(version).digest('base64url').slice(0, 22)}"`;
        if (c.req.header('if-none-match') === etag) return c.body(null, 304, { ETag: etag });
        return c.body(json, 200, { 'Content-Type': 'application/json', ETag: etag, 'Cache-Control': 'no-cache' }) as never;
      },
    );
  }

  app.openapi(
    createRoute({
      method: 'post',
      path: '/projects/{id}/generate',
      summary: 'Queue every slot that has no image (failed or never generated)',
      middleware: [noBody()] as const,
      request: { params: ProjectIdParam, headers: IdempotencyHeaders },
      responses: { 202: projectResponse('Accepted'), 400: errors[400], 404: errors[404], 409: idempotencyConflict },
    }),
    async (c) => {
      const key = c.req.valid('header')['idempotency-key'];
      const project = await generateMissing(deps.projects, c.get('scope'), c.req.valid('param').id, key);
      return c.json(project as z.infer<typeof Project>, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/projects/{id}/scenes/{sceneIndex}/regenerate',
      summary: 'Regenerate every image of one scene',
      middleware: [jsonBody({ required: false })] as const,
      request: {
        params: SceneParams,
        headers: IdempotencyHeaders,
        body: { required: false, content: { 'application/json': { schema: RegenerateBody } } },
      },
      responses: { 202: projectResponse('Accepted'), 400: errors[400], 404: errors[404], 409: idempotencyConflict },
    }),
    async (c) => {
      const { id, sceneIndex } = c.req.valid('param');
      const body = (c.req.valid('json') as z.infer<typeof RegenerateBody> | undefined) ?? {};
      const key = c.req.valid('header')['idempotency-key'];
      const project = await regenerateScene(deps.projects, c.get('scope'), id, sceneIndex, body, key);
      return c.json(project as z.infer<typeof Project>, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/projects/{id}/scenes/{sceneIndex}',
      summary: 'Edit a scene without regenerating (JSON merge patch, RFC 7396)',
      description: 'Any field of the stored scene but index, imageUrls and images. Images made from another prompt than the new one carry stale: true.',
      middleware: [jsonBody({ required: true })] as const,
      request: {
        params: SceneParams,
        body: { required: true, content: { 'application/merge-patch+json': { schema: z.record(z.string(), z.unknown()) } } },
      },
      responses: { 200: projectResponse('The project with the edited scene'), 400: errors[400], 404: errors[404] },
    }),
    async (c) => {
      const { id, sceneIndex } = c.req.valid('param');
      // The patch as sent, key for key (zod's copy would drop keys such as "__proto__").
      const project = await patchScene(deps.projects, c.get('scope'), id, sceneIndex, c.get('body'));
      return c.json(project as z.infer<typeof Project>, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/projects/{id}',
      summary: 'Delete a project, all its images, kept versions and stored objects',
      middleware: [noBody()] as const,
      request: { params: ProjectIdParam },
      responses: { 204: { description: 'Deleted' }, 404: errors[404] },
    }),
    async (c) => {
      await deleteProject(deps.projects, c.get('scope'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  const ProjectCostBody = z
    .object({
      costUsd: z.number().nullable().openapi({ description: 'What every image of the project cost, kept versions included; null while any of them has no known price' }),
      knownUsd: z.number().openapi({ description: 'The sum of the prices that are known' }),
      images: z.number().int(),
      unpriced: z.number().int(),
    })
    .openapi('ProjectCost');

  app.openapi(
    createRoute({
      method: 'get',
      path: '/projects/{id}/cost',
      summary: 'What the images of a project cost (current ones and kept versions)',
      request: { params: ProjectIdParam },
      responses: { 200: { description: 'The total', content: { 'application/json': { schema: ProjectCostBody } } }, 404: errors[404] },
    }),
    async (c) => {
      const cost = await projectCost(deps.projects.sql, c.get('scope'), c.req.valid('param').id);
      if (!cost) throw notFound('project');
      const knownUsd = Number(cost.knownUsd);
      return c.json({ costUsd: cost.unpriced > 0 ? null : knownUsd, knownUsd, images: cost.images, unpriced: cost.unpriced }, 200);
    },
  );

  const WebhookDeliveries = z
    .object({
      items: z.array(
        z.object({
          id: z.string(),
          eventId: z.string().openapi({ description: 'The webhook-id header: the same on every attempt of one event' }),
          event: z.string(),
          attempt: z.number().int(),
          status: z.enum(['delivered', 'failed', 'gone']),
          responseStatus: z.number().int().nullable(),
          durationMs: z.number().int().nullable(),
          error: z.string().nullable(),
          createdAt: z.string(),
        }),
      ),
    })
    .openapi('WebhookDeliveries');

  app.openapi(
    createRoute({
      method: 'get',
      path: '/projects/{id}/webhook-deliveries',
      summary: "Every delivery attempt of the project's webhook, oldest first",
      request: { params: ProjectIdParam },
      responses: { 200: { description: 'The attempts', content: { 'application/json': { schema: WebhookDeliveries } } }, 404: errors[404] },
    }),
    async (c) => {
      const items = await listWebhookDeliveries(deps.projects.sql, c.get('scope'), c.req.valid('param').id);
      if (!items) throw notFound('project');
      return c.json({ items: items.map((d) => ({ ...d, status: d.status as 'delivered' | 'failed' | 'gone', createdAt: toIso(d.createdAt) })) }, 200);
    },
  );

  return app;
}
