import type { MiddlewareHandler } from 'hono';
import { SigningKeysUnavailableError, TokenError, type TokenVerifier } from '../auth/tokens.ts';
import type { Scope } from '../db/scope.ts';
import { AppError } from '../errors.ts';
import { isPagePath } from '../web/pages.ts';
import type { AppEnv } from './env.ts';

const REALM = 'Bearer realm="sceneworks"';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Browsers' EventSource cannot send headers: the event stream also takes ?access_token=. */
const EVENT_STREAM = /^\/projects\/[^/]+\/events$/;

/** Answered to anyone: health, the API's description, stored images (public, or signed URLs), the web pages' shells and assets (no data in them). */
export function isPublicPath(path: string): boolean {
  return isPagePath(path) || path === '/healthz' || path === '/readyz' || path === '/openapi.json' || path === '/docs' || path.startsWith('/docs/') || path.startsWith('/files/');
}

export type Authentication = { mode: 'none'; singleOwner: Scope } | { mode: 'jwt'; verifier: TokenVerifier };

/**
 * Decides the request's scope, once, before any route runs. Single-owner mode: every request
 * is OWNER_ID (unowned projects included). AUTH=jwt: a bearer token is required on every
 * route but the public ones; a user sees their own projects; an operator (service_role) sees
 * every project, or acts for one user with X-Owner-Id.
 */
export function authenticate(auth: Authentication): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (auth.mode === 'none') {
      c.set('scope', auth.singleOwner);
      return next();
    }
    if (isPublicPath(c.req.path)) return next();

    const header = c.req.header('authorization');
    let token: string | undefined;
    if (header !== undefined) {
      const match = /^Bearer +([^\s]+) *$/i.exec(header);
      if (!match) throw unauthorized('the Authorization header must be "Bearer <token>"', true);
      token = match[1];
    } else if (c.req.method === 'GET' && EVENT_STREAM.test(c.req.path)) {
      token = c.req.query('access_token') || undefined;
    }
    if (token === undefined) throw unauthorized('a bearer token is required (Authorization: Bearer <token>)', false);

    let caller;
    try {
      caller = await auth.verifier.verify(token);
    } catch (err) {
      if (err instanceof TokenError) throw unauthorized(err.message, true);
      if (err instanceof SigningKeysUnavailableError) {
        c.header('Retry-After', String(err.retryAfterS));
        throw new AppError('UNAVAILABLE', 'the signing keys cannot be fetched now; retry shortly', [], { cause: err });
      }
      throw err;
    }

    const actingFor = c.req.header('x-owner-id');
    if (caller.kind === 'user') {
      if (actingFor !== undefined) throw new AppError('FORBIDDEN', 'X-Owner-Id is for operators (service_role tokens)');
      c.set('scope', { ownerId: caller.userId, unowned: false });
    } else if (actingFor !== undefined) {
      if (!UUID.test(actingFor)) throw new AppError('VALIDATION_FAILED', 'X-Owner-Id must be a user id (a UUID)', [{ path: ['x-owner-id'], message: 'not a UUID' }]);
      c.set('scope', { ownerId: actingFor.toLowerCase(), unowned: false });
    } else {
      c.set('scope', { ownerId: null, unowned: true });
    }
    return next();

    function unauthorized(message: string, tokenSent: boolean): AppError {
      const detail = tokenSent ? `, error="invalid_token", error_description="${message.replace(/["\\]/g, '')}"` : '';
      c.header('WWW-Authenticate', `${REALM}${detail}`);
      return new AppError('UNAUTHORIZED', message);
    }
  };
}
