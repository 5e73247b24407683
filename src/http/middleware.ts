import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { parseClientJson } from './client-json.ts';
import type { AppEnv } from './env.ts';
import { setResponseHeader } from './response-headers.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/** Request id (echoed when the client sent a sane one), logger, one access log line. */
export function requestContext(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const given = c.req.header('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    const reqLog = log.child({ requestId });
    c.set('requestId', requestId);
    c.set('log', reqLog);
    const started = performance.now();
    await next();
    setResponseHeader(c, 'x-request-id', requestId);
    reqLog.info(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 },
      'request',
    );
  };
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json(\s*;.*)?$/i;

/**
 * Guards a JSON body before validation: a body that is not JSON is a 415; bytes that are not
 * UTF-8, JSON that does not parse, or that could not be stored and echoed exactly (see
 * parseClientJson) are a 400; a required body that is missing is a 400, never an empty object.
 * The parsed body, exactly as sent, is `c.get('body')`: what is stored verbatim is taken from
 * it, never from the validator's output (which drops keys such as "__proto__" from open objects).
 */
export function jsonBody(options: { required: boolean }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    if (text.trim() === '') {
      if (options.required) throw new AppError('VALIDATION_FAILED', 'a JSON request body is required');
      return next();
    }
    const type = c.req.header('content-type') ?? '';
    if (!JSON_TYPE.test(type)) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', `content-type must be application/json, got ${type ? `"${type}"` : 'none'}`);
    }
    // Decoding replaces invalid bytes (a lone surrogate sent as bytes, ED A0 80) with U+FFFD:
    // refused, as an escaped lone surrogate is, never stored changed.
    if (!isUtf8(bytes)) throw new AppError('VALIDATION_FAILED', 'the request body is not valid UTF-8');
    c.set('body', parseClientJson(text));
    await next();
  };
}

/**
 * For routes that take no body: nothing, or an empty JSON object, is accepted; anything else
 * is a 400 rather than silently ignored.
 */
export function noBody(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const text = (await c.req.text()).trim();
    if (text !== '' && text.replace(/\s+/g, '') !== '{}') throw new AppError('VALIDATION_FAILED', `${c.req.method} ${c.req.path} takes no request body`);
    await next();
  };
}
