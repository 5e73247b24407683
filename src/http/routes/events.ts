import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { openProjectEvents, type ProjectEventsContext } from '../../events/project-events.ts';
import type { AppEnv } from '../env.ts';
import { ErrorBody, ProjectIdParam } from '../schemas.ts';
import { validationHook } from '../validation.ts';
import type { Metrics } from '../../metrics.ts';

export interface EventRoutesDeps {
  events: ProjectEventsContext;
  /** A comment line is sent this often, so proxies do not close an idle stream. */
  keepAliveMs?: number | undefined;
  /** Counts the streams open (GET /metrics). */
  metrics?: Pick<Metrics, 'eventStreamsOpen'> | undefined;
}

const DESCRIPTION = [
  'Server-sent events. `progress` (the project\'s progress) first; then `image` (one image as in',
  '`images[]`, plus `sceneIndex`) for each current image and, later, for each image whose status or',
  'URL changes, with `progress` after; and `done` (`{"status": <final status>}`), after which the',
  'stream closes. A project already done sends `progress` and `done` at once. Changes made by any',
  'replica are seen. A `: keep-alive` comment line comes every 15 s.',
].join(' ');

export function eventRoutes(deps: EventRoutesDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const keepAliveMs = deps.keepAliveMs ?? 15_000;

  app.openapi(
    createRoute({
      method: 'get',
      path: '/projects/{id}/events',
      summary: 'Follow the generation of a project as it happens',
      description: DESCRIPTION,
      request: { params: ProjectIdParam },
      responses: {
        200: { description: 'An event stream', content: { 'text/event-stream': { schema: z.string() } } },
        404: { description: 'No such project (or not yours)', content: { 'application/json': { schema: ErrorBody } } },
      },
    }),
    async (c) => {
      // Opened before the response starts: an unknown project is still a plain 404.
      const events = await openProjectEvents(deps.events, c.get('scope'), c.req.valid('param').id);
      const log = c.get('log');
      return streamSSE(c, async (stream) => {
        stream.onAbort(() => events.close());
        deps.metrics?.eventStreamsOpen.inc();
        const keepAlive = setInterval(() => void stream.write(': keep-alive\n\n'), keepAliveMs);
        try {
          // Each item is ready-made SSE text, the same string for every client of the project.
          for await (const frames of events) {
            if (stream.aborted) break;
            await stream.write(frames);
          }
        } catch (err) {
          log.warn({ err }, 'project event stream failed');
        } finally {
          // Whatever ends the stream (done, client gone, error, shutdown), nothing is left behind.
          clearInterval(keepAlive);
          events.close();
          deps.metrics?.eventStreamsOpen.dec();
        }
      }) as never;
    },
  );

  return app;
}
