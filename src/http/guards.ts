import type { MiddlewareHandler } from 'hono';
import { isLoopbackHost } from '../config.ts';
import { AppError } from '../errors.ts';
import type { AppEnv } from './env.ts';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const JSON_TYPE = /^application\/([\w.-]+\+)?json(\s*;.*)?$/i;


export interface RequestGuardOptions {
  /** The interface the service listens on (HOST). */
  listenHost: string;
  /** PUBLIC_BASE_URL, when set: its host and origin are this service's own. */
  publicBaseUrl: string | undefined;
  /** ALLOWED_HOSTS. */
  allowedHosts: readonly string[];
  /** CORS_ORIGINS: other origins whose pages may change state here. */
  trustedOrigins: readonly string[];
}

/**
 * What a browser could be tricked into sending is refused before any route runs.
 *
 * - DNS rebinding: bound to loopback (or with ALLOWED_HOSTS set), only requests naming one of
 *   our own host names are answered; a page on evil.test that rebinds its name to 127.0.0.1
 *   still sends `Host: evil.test`.
 * - Cross-site requests: a state-changing request (any method but GET, HEAD, OPTIONS) from a
 *   page of another origin is refused, whatever its content type: browsers send `Origin` (and
 *   `Sec-Fetch-Site`) with every such request. Clients that are not browsers send neither.
 * - Such a request with a body must say it is JSON: text/plain and form bodies are what a page
 *   of another origin can send without asking (no CORS preflight).
 */
export function requestGuards(o: RequestGuardOptions): MiddlewareHandler<AppEnv> {
  const publicUrl = o.publicBaseUrl ? new URL(o.publicBaseUrl) : undefined;
  const checkHost = isLoopbackHost(o.listenHost) || o.allowedHosts.length > 0;
  const hosts = new Set([...o.allowedHosts, ...(isLoopbackHost(o.listenHost) ? LOOPBACK_NAMES : []), ...(publicUrl ? [publicUrl.hostname] : [])]);
  const origins = new Set([...o.trustedOrigins, ...(publicUrl ? [publicUrl.origin] : [])]);

  return async (c, next) => {
    const url = new URL(c.req.url);
    if (checkHost && !hosts.has(url.hostname.toLowerCase()) && !(isLoopbackHost(o.listenHost) && isLoopbackHost(url.hostname))) {
      throw new AppError('FORBIDDEN', `this service does not answer for the host "${url.hostname}"; add it to ALLOWED_HOSTS`);
    }
    if (SAFE_METHODS.has(c.req.method)) return next();

    const origin = c.req.header('origin');
    const site = c.req.header('sec-fetch-site');
    const trusted = origin !== undefined && (origin === url.origin || origins.has(origin));
    if ((origin !== undefined && !trusted) || (origin === undefined && site !== undefined && site !== 'same-origin' && site !== 'none')) {
      throw new AppError('FORBIDDEN', `cross-site request refused${origin ? ` from ${origin}` : ''}; list trusted origins in CORS_ORIGINS`);
    }
    // Read once (bounded by bodyLimit, cached for the route): a header can claim no body and send one.
    // Read as bytes: once read as text, invalid UTF-8 would reach jsonBody as U+FFFD, unseen.
    if ((await c.req.arrayBuffer()).byteLength > 0 && !JSON_TYPE.test(c.req.header('content-type') ?? '')) {
      const type = c.req.header('content-type');
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', `content-type must be application/json, got ${type ? `"${type}"` : 'none'}`);
    }
    return next();
  };
}
