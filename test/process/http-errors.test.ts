import type { Server } from 'node:http';
import { connect } from 'node:net';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/http/server.ts';

/**
 * What Node's HTTP parser refuses never reaches the app: the server answers it with the
 * contract's error body. Raw TCP, since no HTTP client sends such requests.
 */
let server: Server;
let port: number;
beforeAll(async () => {
  const app = new Hono();
  app.get('/ok', (c) => c.json({ ok: true }));
  // Answers after the parser has read what follows the request on the connection.
  app.get('/slow', async (c) => {
    await new Promise((resolve) => setTimeout(resolve, 100));
    return c.json({ slow: true });
  });
  server = await startServer(app, {
    port: 0,
    hostname: '127.0.0.1',
    // A small header limit; a request must be complete at once (the check runs every 50 ms).
    http: { maxHeaderSize: 4096, requestTimeout: 300, headersTimeout: 300, connectionsCheckingInterval: 50 },
  });
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

interface RawAnswer {
  statusLine: string;
  headers: Record<string, string>;
  body: string;
}

/** Writes raw bytes (optionally more later), reads until the server closes the connection. */
function raw(request: string, options: { keepOpen?: boolean } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const head = end < 0 ? text : text.slice(0, end);
      const body = end < 0 ? '' : text.slice(end + 4);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ statusLine, headers, body });
    });
    socket.write(request);
    if (!options.keepOpen) socket.end();
  });
}

function expectContractError(answer: RawAnswer, status: string, code: string): { message: string } {
  expect(answer.statusLine).toBe(`HTTP/1.1 ${status}`);
  expect(answer.headers['content-type']).toBe('application/json; charset=UTF-8');
  expect(answer.headers.connection).toBe('close');
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
  const parsed = JSON.parse(answer.body) as { error: { code: string; message: string; requestId: string; details: unknown[] } };
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(parsed.error).toEqual({ code, message: expect.any(String), requestId: answer.headers['x-request-id'], details: [] });
  expect(parsed.error.requestId).toMatch(/^[0-9a-f-]{36}$/);
  return parsed.error;
}

describe("requests Node's HTTP parser refuses get the contract's error body", () => {
  it('headers over the limit: 431 HEADERS_TOO_LARGE', async () => {
    // The client is still sending when the server answers: the answer must not be lost to a reset.
    const answer = await raw(`GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    const error = expectContractError(answer, '431 Request Header Fields Too Large', 'HEADERS_TOO_LARGE');
    expect(error.message).toBe('request headers exceed 4096 bytes');
  });

  it('a garbage request line: 400 VALIDATION_FAILED, malformed HTTP request', async () => {
    const error = expectContractError(await raw('GARBAGE\r\n\r\n'), '400 Bad Request', 'VALIDATION_FAILED');
    expect(error.message).toMatch(/^malformed HTTP request: \S/);
  });

  it('two Content-Length headers: 400 VALIDATION_FAILED', async () => {
    const answer = await raw('POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab');
    const error = expectContractError(answer, '400 Bad Request', 'VALIDATION_FAILED');
    expect(error.message).toBe('malformed HTTP request: Duplicate Content-Length');
  });

  it('a Host header that names no host, a backslash in the path: 400 VALIDATION_FAILED from the adaptor', async () => {
    for (const [request, reason] of [
      ['GET /ok HTTP/1.1\r\nHost: evil.example@localhost\r\nConnection: close\r\n\r\n', 'Invalid host header'],
      ['GET /ok HTTP/1.1\r\nHost: [::ffff:127.0.0.1]\r\nConnection: close\r\n\r\n', 'Invalid host header'],
      ['GET /a\\b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'Backslash in request path'],
    ]) {
      const error = expectContractError(await raw(request!), '400 Bad Request', 'VALIDATION_FAILED');
      expect(error.message).toBe(`malformed HTTP request: ${reason}`);
    }
  });

  it('a request that never completes: 408 REQUEST_TIMEOUT', async () => {
    const answer = await raw('GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ', { keepOpen: true });
    const error = expectContractError(answer, '408 Request Timeout', 'REQUEST_TIMEOUT');
    expect(error.message).toBe('the request was not received in time');
  });

  it('a malformed request behind a slow good one on the same connection: the app answers the good one whole, then the 400', async () => {
    const answer = await raw('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n', { keepOpen: true });
    // Two answers on one connection: the app's 200, whole, then the parser's 400.
    expect(answer.statusLine).toBe('HTTP/1.1 200 OK');
    expect(answer.body.startsWith('{"slow":true}HTTP/1.1 400 Bad Request\r\n')).toBe(true);
    const second = answer.body.slice(answer.body.indexOf('HTTP/1.1 '));
    expect(second).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(second).toContain('"code":"VALIDATION_FAILED"');
  });
});
