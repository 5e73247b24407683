import { describe, expect, it } from 'vitest';
import { createProjectCache } from '../../src/projects/project-cache.ts';

describe('project cache', () => {
  it('answers only for the version an entry was filed under', () => {
    const cache = createProjectCache({ maxBytes: 1000, maxAgeMs: 1000 });
    cache.set('a', 'v1', '{"x":1}');
    expect(cache.get('a', 'v1')).toBe('{"x":1}');
    expect(cache.get('a', 'v2')).toBeUndefined();
    expect(cache.get('a', 'v1')).toBeUndefined(); // a mismatch drops the entry
  });

  it('evicts the least recently used beyond its byte budget', () => {
    const cache = createProjectCache({ maxBytes: 10, maxAgeMs: 1000 });
    cache.set('a', 'v', '1234');
    cache.set('b', 'v', '1234');
    expect(cache.get('a', 'v')).toBe('1234'); // a is now the most recent
    cache.set('c', 'v', '1234');
    expect(cache.get('b', 'v')).toBeUndefined();
    expect(cache.get('a', 'v')).toBe('1234');
    expect(cache.get('c', 'v')).toBe('1234');
    cache.set('huge', 'v', 'x'.repeat(11));
    expect(cache.get('huge', 'v')).toBeUndefined();
  });

  it('forgets entries older than maxAgeMs', () => {
    let now = 0;
    const cache = createProjectCache({ maxBytes: 100, maxAgeMs: 50, now: () => now });
    cache.set('a', 'v', 'x');
    now = 40;
    expect(cache.get('a', 'v')).toBe('x');
    now = 51;
    expect(cache.get('a', 'v')).toBeUndefined();
  });
});
