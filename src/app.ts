import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import type { Deps } from './deps.ts';
import { AppError } from './errors.ts';
import type { AppEnv } from './http/env.ts';
import { errorResponse, onError } from './http/errors.ts';
import { authenticate } from './http/auth.ts';
import { requestGuards } from './http/guards.ts';
import { rateLimitWrites } from './http/rate-limit.ts';
import { corsPolicy, securityHeaders } from './http/security.ts';
import { requestContext } from './http/middleware.ts';
import { docsRoutes } from './http/routes/docs.ts';
import { downloadRoutes } from './http/routes/downloads.ts';
import { eventRoutes } from './http/routes/events.ts';
import { imageVersionRoutes } from './http/routes/image-versions.ts';
import { imageRoutes } from './http/routes/images.ts';
import { fileRoutes } from './http/routes/files.ts';
import { opsRoutes } from './http/routes/ops.ts';
import { projectRoutes } from './http/routes/projects.ts';
import { validationHook } from './http/validation.ts';
import { httpMetrics, metricsRoutes } from './http/routes/metrics.ts';
import { errorPage, isNavigation, webRoutes, type PageSettings } from './web/pages.ts';

export function createApp(deps: Deps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  const pages: PageSettings = { auth: deps.config.AUTH, providers: [...deps.providers.keys()], defaultProvider: deps.config.IMAGE_PROVIDER };
  app.use(httpMetrics(deps.metrics));
  app.use(requestContext(deps.log));
  // Outside everything that can answer on its own (413, 403, 401, 429, preflight): every answer gets them.
  // Pages show stored images: this service's files, a storage service's, legacy URLs (https).
  app.use(securityHeaders([...new Set([deps.config.PUBLIC_BASE_URL ? new URL(deps.config.PUBLIC_BASE_URL).origin : undefined, 'https:'].filter((o) => o !== undefined))]));
  // Before authentication and rate limits: a preflight carries no token, and a listed web app must read error answers.
  app.use(corsPolicy(deps.config.CORS_ORIGINS));
  app.use(
    bodyLimit({
      maxSize: deps.config.MAX_BODY_BYTES,
      onError: (c) => errorResponse(c, new AppError('PAYLOAD_TOO_LARGE', `request body exceeds ${deps.config.MAX_BODY_BYTES} bytes`)),
    }),
  );

  app.use(
    requestGuards({
      listenHost: deps.config.HOST,
      publicBaseUrl: deps.config.PUBLIC_BASE_URL,
      allowedHosts: deps.config.ALLOWED_HOSTS,
      trustedOrigins: deps.config.CORS_ORIGINS,
    }),
  );
  // With METRICS_TOKEN, /metrics answers to that token before (and instead of) user authentication.
  if (deps.config.METRICS_TOKEN) app.route('/', metricsRoutes(deps.metrics, deps.config.METRICS_TOKEN));
  app.use(authenticate(deps.authentication));
  // After authentication (it keys on the owner) and the guards (refused requests use up nothing).
  app.use(rateLimitWrites({ sql: deps.db.sql, perMinute: deps.config.RATE_LIMIT_PER_MIN, keyOf: (c) => c.get('scope')?.ownerId ?? null }));

  app.route('/', opsRoutes(deps.db.sql));
  if (!deps.config.METRICS_TOKEN) app.route('/', metricsRoutes(deps.metrics, undefined));
  if (deps.localStore) app.route('/', fileRoutes(deps.localStore));
  app.route(
    '/',
    projectRoutes({
      projects: {
        sql: deps.db.sql,
        store: deps.store,
        log: deps.log,
        cache: deps.projectCache,
        wake: () => deps.runner.wake(),
        maxPendingSlotsPerOwner: deps.config.MAX_PENDING_SLOTS_PER_OWNER,
      },
      providerNames: [...deps.providers.keys()],
      webhooksEnabled: deps.webhooks !== undefined,
      defaultProvider: deps.config.IMAGE_PROVIDER,
    }),
  );

  app.route('/', eventRoutes({ events: { sql: deps.db.sql, hub: deps.projectEvents }, keepAliveMs: deps.config.SSE_KEEP_ALIVE_MS, metrics: deps.metrics }));
  app.route('/', downloadRoutes({ sql: deps.db.sql, store: deps.store, legacy: { fetch: deps.legacyFetch } }));
  app.route('/', imageRoutes({ sql: deps.db.sql, store: deps.store }));
  app.route('/', imageVersionRoutes({ sql: deps.db.sql, store: deps.store, log: deps.log }));

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'sceneworks', version: '1', description: 'Generate, store and serve every image of every scene.' },
  });
  app.route('/', docsRoutes());
  app.route('/', webRoutes(pages));

  // A person who opens a URL gets a page, never raw JSON; API clients get the contract's error body.
  app.notFound((c) =>
    isNavigation(c)
      ? errorPage(c, pages, 404, `There is nothing at ${c.req.path}.`)
      : errorResponse(c, new AppError('NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`)),
  );
  app.onError(async (err, c) => {
    const res = onError(err, c);
    if (!isNavigation(c)) return res;
    const body = (await res.json()) as { error: { message: string } };
    return errorPage(c, pages, res.status, body.error.message);
  });
  return app;
}

export type App = ReturnType<typeof createApp>;
