import { randomUUID } from 'node:crypto';
import { createServer, maxHeaderSize, STATUS_CODES, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { getRequestListener, RequestError } from '@hono/node-server';
import type { ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { statusOf } from './errors.ts';

/** The server could not listen (address in use, not allowed): one line that says what to change. */
export class ListenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ListenError';
  }
}

export interface StartServerOptions {
  port: number;
  hostname: string;
  log?: Logger | undefined;
  /** Node's own limits (maxHeaderSize, requestTimeout, headersTimeout…); its defaults otherwise. */
  http?: ServerOptions | undefined;
}

/**
 * Serves `app` with @hono/node-server and resolves once it listens. Requests refused before the
 * app sees them are answered here with the contract's error body, as the app answers everything
 * else: what Node's HTTP parser refuses (headers too large, a malformed request line, two
 * Content-Lengths, a request that never completes), and what the adaptor cannot make a web
 * Request of (a Host header that names no host, a backslash in the path).
 */
export function startServer(app: { fetch: (request: Request) => Response | Promise<Response> }, options: StartServerOptions): Promise<Server> {
  // The adaptor's listener on a node:http server: createAdaptorServer takes no error handler.
  const listener = getRequestListener(app.fetch, { hostname: options.hostname, errorHandler: (err) => adaptorErrorAnswer(err, options.log) });
  const server = createServer(options.http ?? {}, listener);
  const headerLimit = options.http?.maxHeaderSize ?? maxHeaderSize;
  server.on('clientError', (err: Error, socket: Duplex) => answerClientError(err, socket, headerLimit, options.log));
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const where = `${options.hostname}:${options.port}`;
      if (err.code === 'EADDRINUSE') reject(new ListenError(`cannot listen on ${where}: the address is already in use; stop what holds it or set PORT`, { cause: err }));
      else if (err.code === 'EACCES') reject(new ListenError(`cannot listen on ${where}: not allowed (ports below 1024 need privileges); set PORT`, { cause: err }));
      else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') reject(new ListenError(`cannot listen on ${where}: no such local address; set HOST`, { cause: err }));
      else reject(new ListenError(`cannot listen on ${where}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(options.port, options.hostname, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/**
 * The adaptor's errors: a RequestError is a request it could not build (the client's fault);
 * anything else escaped the app's own error handling, which answers every error it sees.
 */
function adaptorErrorAnswer(err: unknown, log: Logger | undefined): Response {
  const requestId = randomUUID();
  const refused = err instanceof RequestError;
  const code: ErrorCode = refused ? 'VALIDATION_FAILED' : 'INTERNAL';
  const message = refused ? `malformed HTTP request: ${err.message}` : 'internal error';
  if (refused) log?.info({ requestId, status: 400, reason: err.message }, 'refused by the HTTP adaptor');
  else log?.error({ requestId, err }, 'error outside the app');
  return new Response(JSON.stringify({ error: { code, message, requestId, details: [] } }), {
    status: statusOf(code),
    headers: { 'content-type': 'application/json; charset=UTF-8', 'x-request-id': requestId },
  });
}

type ClientError = Error & { code?: string; reason?: string };

/** The contract's code and message for an error of Node's HTTP layer. */
export function clientErrorAnswer(err: ClientError, maxHeaderSize: number): { code: ErrorCode; message: string } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'HEADERS_TOO_LARGE', message: `request headers exceed ${maxHeaderSize} bytes` };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { code: 'PAYLOAD_TOO_LARGE', message: 'chunk extensions of the request body are too large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { code: 'REQUEST_TIMEOUT', message: 'the request was not received in time' };
    default:
      return { code: 'VALIDATION_FAILED', message: `malformed HTTP request: ${err.reason ?? err.message}` };
  }
}

/** Sockets already answered: the parser reports every further byte of a broken request again. */
const answered = new WeakSet<Duplex>();
/** How long an answered client has to close before its connection is cut. */
const LINGER_MS = 2_000;

function answerClientError(err: ClientError, socket: Duplex, headerLimit: number, log: Logger | undefined): void {
  if (answered.has(socket)) return;
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy(); // nothing can be said on a connection the client reset or closed
    return;
  }
  answered.add(socket);
  // A good request before the bad one on this connection may still be answering: its response
  // goes first, whole, and this answer after it (writing now would corrupt it).
  const pending = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
  if (pending && !pending.writableFinished) {
    pending.once('finish', () => (socket.writable ? writeAnswer(err, socket, headerLimit, log) : socket.destroy()));
    pending.once('close', () => setTimeout(() => socket.destroy(), LINGER_MS).unref());
    return;
  }
  writeAnswer(err, socket, headerLimit, log);
}

function writeAnswer(err: ClientError, socket: Duplex, headerLimit: number, log: Logger | undefined): void {
  const { code, message } = clientErrorAnswer(err, headerLimit);
  const status = statusOf(code);
  const requestId = randomUUID();
  const body = JSON.stringify({ error: { code, message, requestId, details: [] } });
  log?.info({ requestId, status, code: err.code, reason: err.reason ?? err.message }, 'refused by the HTTP parser');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'content-type: application/json; charset=UTF-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${requestId}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
  // end() sends the answer and a FIN; closing at once, with request bytes still unread, would
  // reset the connection and could lose the answer before the client reads it. So the client
  // closes first, or the connection is cut after a grace period.
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
