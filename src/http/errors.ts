import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { AppError, type ErrorCode, type ErrorDetail } from '../errors.ts';
import type { AppEnv } from './env.ts';

/** One exhaustive mapping from error code to HTTP status. */
export function statusOf(code: ErrorCode): ContentfulStatusCode {
  switch (code) {
    case 'VALIDATION_FAILED':
      return 400;
    case 'UNAUTHORIZED':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'CONFLICT':
      return 409;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'HEADERS_TOO_LARGE':
      return 431;
    case 'REQUEST_TIMEOUT':
      return 408;
    case 'RATE_LIMITED':
    case 'QUOTA_EXCEEDED':
      return 429;
    case 'INTERNAL':
      return 500;
    case 'UNAVAILABLE':
      return 503;
    default: {
      const unreachable: never = code;
      throw new Error(`unknown error code ${String(unreachable)}`);
    }
  }
}

export function validationError(error: ZodError, where?: string): AppError {
  const details: ErrorDetail[] = error.issues.flatMap((issue) => {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    // Name each unknown field in its own detail, so a client sees exactly what was refused.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...path, key], message: `unknown field "${key}"` }));
    }
    return [{ path, message: issue.message }];
  });
  const first = details[0];
  const summary = first ? `${first.path.join('.') || where || 'body'}: ${first.message}` : 'invalid request';
  return new AppError('VALIDATION_FAILED', `invalid ${where ?? 'request'}: ${summary}`, details);
}

export function errorResponse(c: Context<AppEnv>, error: AppError): Response {
  return c.json(
    { error: { code: error.code, message: error.message, requestId: c.get('requestId') ?? '', details: error.details } },
    statusOf(error.code),
  );
}

/** The one error handler: every error leaves as the contract's body, a 500 without internals. */
export function onError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof AppError) return errorResponse(c, err);
  if (err instanceof HTTPException) {
    const code: ErrorCode = err.status === 413 ? 'PAYLOAD_TOO_LARGE' : err.status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : err.status < 500 ? 'VALIDATION_FAILED' : 'INTERNAL';
    return errorResponse(c, new AppError(code, err.message || 'bad request'));
  }
  const log = c.get('log');
  log?.error({ err }, 'unhandled error');
  if (isDatabaseUnavailable(err)) return errorResponse(c, new AppError('UNAVAILABLE', 'the database is unavailable; retry shortly'));
  return errorResponse(c, new AppError('INTERNAL', 'internal error'));
}

function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'CONNECTION_CLOSED', 'CONNECT_TIMEOUT', 'CONNECTION_ENDED', '57P01', '57P03'].includes(code);
}
