import { randomBytes } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { NONCE, secureHeaders } from 'hono/secure-headers';
import type { AppEnv } from './env.ts';
import { setResponseHeader } from './response-headers.ts';

/** Images other origins' pages embed (<img src>): GET /files of the local store. */
const EMBEDDABLE_PREFIX = '/files/';

const HTML = /^text\/html\b/i;

/** The same on every answer (hono's defaults for the rest: nosniff, COOP same-origin, …). */
const COMMON = {
  xFrameOptions: 'DENY',
  // Not no-referrer: under no-referrer, browsers send `Origin: null` with a same-origin form
  // POST, which the cross-site guard (requestGuards) would refuse.
  referrerPolicy: 'strict-origin-when-cross-origin',
  // Without includeSubDomains: this service does not speak for the operator's other hosts.
  // Browsers ignore it over plain HTTP.
  strictTransportSecurity: 'max-age=15552000',
} as const;

/** JSON, files, scripts, errors: nothing in them may load or run anything, nor be framed. */
const NOTHING = { defaultSrc: ["'none'"], frameAncestors: ["'none'"] };

/**
 * HTML pages: their own origin only; inline scripts only with this request's nonce (see
 * cspNonce). Styles need 'unsafe-inline': the API reference's bundle injects <style> elements
 * without a nonce and sets style attributes (and a nonce in style-src would void 'unsafe-inline').
 * Images may also come from the origins securityHeaders is given (where stored images are).
 */
const PAGE = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'", NONCE],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

/**
 * Security headers on every answer, errors included (mount it outside every middleware that can
 * answer on its own). The policy follows what the answer is, known once the handler has run:
 * - an HTML page gets the page CSP above;
 * - anything else gets `default-src 'none'; frame-ancestors 'none'`;
 * - files under /files/ (but for an error page there) are `Cross-Origin-Resource-Policy: cross-origin`, so web apps of other
 *   origins can show the images (also a 304 revalidation, whose headers replace the cached
 *   ones); every other answer is `same-origin`. CORP does not apply to CORS requests, so it
 *   does not get in the way of CORS_ORIGINS clients.
 */
export function securityHeaders(imageOrigins: readonly string[] = []): MiddlewareHandler<AppEnv> {
  const forPages = secureHeaders({ ...COMMON, contentSecurityPolicy: { ...PAGE, imgSrc: [...PAGE.imgSrc, ...imageOrigins] } });
  const forData = secureHeaders({ ...COMMON, contentSecurityPolicy: NOTHING });
  const forFiles = secureHeaders({ ...COMMON, contentSecurityPolicy: NOTHING, crossOriginResourcePolicy: 'cross-origin' });
  const nothingMore = async () => {};
  return async (c, next) => {
    await next();
    const html = HTML.test(c.res.headers.get('content-type') ?? '');
    // Under /files/ only our own error pages are HTML (the local store serves image types only,
    // with 200 or 304): they get the page policy, or their stylesheet would be refused.
    const setHeaders = c.req.path.startsWith(EMBEDDABLE_PREFIX) && !(html && c.res.status >= 400)
      ? forFiles
      : html
        ? forPages
        : forData;
    // secureHeaders sets its headers after its `next`: here the answer is already made.
    await setHeaders(c, nothingMore);
  };
}

/**
 * This request's CSP nonce, made on first use: a page's inline <script> carries it, and the
 * page's Content-Security-Policy (securityHeaders) allows scripts with it only.
 */
export function cspNonce(c: Context): string {
  let nonce = c.get('secureHeadersNonce');
  if (!nonce) {
    nonce = randomBytes(16).toString('base64');
    c.set('secureHeadersNonce', nonce);
  }
  return nonce;
}

/**
 * CORS for the web apps of `origins` (CORS_ORIGINS), and for nobody when it is empty: then no
 * Access-Control-* header is ever sent and a preflight is not approved (it reaches the routes,
 * which have no OPTIONS). Credentials are not needed: clients send bearer tokens, not cookies.
 * An origin not listed gets nothing either; `Vary: Origin` on every answer keeps a shared cache
 * from handing one origin's answer to another.
 */
export function corsPolicy(origins: readonly string[]): MiddlewareHandler<AppEnv> {
  if (origins.length === 0) return async (_c, next) => next();
  const listed = new Set(origins);
  const allow = cors({
    origin: [...listed],
    allowMethods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    allowHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
    exposeHeaders: ['x-request-id', 'location', 'etag', 'retry-after', 'ratelimit', 'ratelimit-policy'],
    maxAge: 600,
  });
  return async (c, next) => {
    const origin = c.req.header('origin');
    if (origin !== undefined && listed.has(origin)) return allow(c, next);
    await next();
    setResponseHeader(c, 'Vary', 'Origin', { append: true });
  };
}
