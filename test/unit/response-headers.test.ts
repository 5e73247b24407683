import { Hono, type Handler } from 'hono';
import { describe, expect, it } from 'vitest';
import { setResponseHeader } from '../../src/http/response-headers.ts';

function appWith(handler: Handler): Hono {
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    setResponseHeader(c, 'x-request-id', 'r-1');
    setResponseHeader(c, 'vary', 'Origin', { append: true });
  });
  app.get('/', handler);
  return app;
}

describe('setResponseHeader (after next)', () => {
  it('sets and appends on a response the handler made, keeping its body, status and headers', async () => {
    const res = await appWith((c) => c.json({ a: 1 }, 201, { vary: 'Accept-Encoding' })).request('/');
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toBe('r-1');
    expect(res.headers.get('vary')).toBe('Accept-Encoding, Origin');
    expect(await res.json()).toEqual({ a: 1 });
  });

  it('rebuilds a response whose headers are immutable (a redirect) instead of throwing', async () => {
    const res = await appWith(() => Response.redirect('http://example.test/elsewhere', 302)).request('/');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://example.test/elsewhere');
    expect(res.headers.get('x-request-id')).toBe('r-1');
  });
});
