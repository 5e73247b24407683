import { describe, expect, it } from 'vitest';
import { httpFailure, retryAfterMs } from '../../src/providers/errors.ts';

describe('httpFailure', () => {
  const cases: [number, boolean | undefined, string, boolean][] = [
    [429, undefined, 'rate_limited', true],
    [500, undefined, 'server', true],
    [503, undefined, 'server', true],
    [408, undefined, 'server', true],
    [400, undefined, 'bad_request', false],
    [400, true, 'content_policy', false],
    [403, true, 'content_policy', false],
    [401, undefined, 'auth', false],
    [403, undefined, 'auth', false],
    [404, undefined, 'not_found', false],
  ];
  for (const [status, contentPolicy, code, transient] of cases) {
    it(`${status}${contentPolicy ? ' (content policy)' : ''} is ${transient ? 'transient' : 'permanent'} ${code}`, () => {
      const e = httpFailure('vendor', status, 'the vendor said so', contentPolicy ? { contentPolicy } : {});
      expect(e).toMatchObject({ code, transient, status, provider: 'vendor' });
      expect(e.message).toContain('the vendor said so');
    });
  }
});

describe('retryAfterMs', () => {
  it('reads seconds, milliseconds and HTTP dates', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after': '0.5' }))).toBe(500);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:03 GMT' }), now)).toBe(3000);
    expect(retryAfterMs({ 'retry-after': '1' })).toBe(1000);
  });
  it('is undefined when absent or unreadable', () => {
    expect(retryAfterMs(new Headers())).toBeUndefined();
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});
