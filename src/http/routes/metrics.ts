import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import { matchedRoutes } from 'hono/route';
import { AppError } from '../../errors.ts';
import type { Metrics } from '../../metrics.ts';
import type { AppEnv } from '../env.ts';

/** The route pattern a request matched ('/projects/:id'), never its path: bounded label values. */
function routeOf(c: Context): string {
  const handlers = matchedRoutes(c).filter((r) => r.method !== 'ALL');
  return handlers.at(-1)?.path ?? 'unmatched';
}

/** Counts every answer by method, route and status, with its duration (mount it outermost). */
export function httpMetrics(metrics: Metrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const labels = { method: c.req.method, route: routeOf(c), status: String(c.res.status) };
    metrics.httpRequests.inc(labels);
    metrics.httpSeconds.observe(labels, (performance.now() - started) / 1000);
  };
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * GET /metrics in Prometheus' text format. With METRICS_TOKEN it takes that bearer token and
 * nothing else (a scraper has no user token); without it, an operator under AUTH=jwt, or the
 * single owner under AUTH=none (loopback).
 */
export function metricsRoutes(metrics: Metrics, token: string | undefined) {
  const app = new Hono<AppEnv>();
  app.get('/metrics', async (c) => {
    if (token !== undefined) {
      const given = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')?.[1];
      if (given === undefined || !sameSecret(given, token)) {
        c.header('WWW-Authenticate', 'Bearer realm="sceneworks metrics"');
        throw new AppError('UNAUTHORIZED', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
      }
    } else {
      const scope = c.get('scope');
      // Operators and the single owner see every project (unowned ones too): they may see the numbers.
      if (scope?.unowned !== true) throw new AppError('FORBIDDEN', 'metrics are for operators (a service_role token, or METRICS_TOKEN)');
    }
    return c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
  });
  return app;
}
