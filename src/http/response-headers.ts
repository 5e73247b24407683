import type { Context } from 'hono';

/**
 * Sets a header on the response a handler already made, from middleware after `next()`.
 *
 * Hono's `c.header()` at that point rebuilds the response from its body, which turns the
 * Node adapter's lightweight response (a string body written to the socket as it is) into a
 * web Response whose body is encoded and piped as a stream: for a 224 KB project that was
 * most of the Node CPU a cold GET /projects/:id cost (npm run bench -- --only reads). The
 * headers of the response as it is are set in place instead; only a response whose headers
 * are immutable (one passed through from fetch) is rebuilt.
 */
export function setResponseHeader(c: Context, name: string, value: string, options?: { append?: boolean }): void {
  try {
    if (options?.append) c.res.headers.append(name, value);
    else c.res.headers.set(name, value);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    c.header(name, value, options);
  }
}
