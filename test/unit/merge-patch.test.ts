import { describe, expect, it } from 'vitest';
import { applyMergePatch } from '../../src/projects/merge-patch.ts';

describe('applyMergePatch (RFC 7396)', () => {
  // Appendix A of RFC 7396, every example.
  const examples: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(examples)('%j patched with %j is %j', (target, patch, expected) => {
    expect(applyMergePatch(target, patch)).toEqual(expected);
  });

  it('keys named __proto__, constructor and prototype are data, set and removed like any other', () => {
    const target = JSON.parse('{"__proto__":{"keep":1},"constructor":"c","x":1}');
    const patch = JSON.parse('{"__proto__":{"added":2},"prototype":{"p":true},"constructor":null}');
    const result = applyMergePatch(target, patch) as Record<string, unknown>;
    expect(Object.keys(result).sort()).toEqual(['__proto__', 'prototype', 'x']);
    expect(JSON.stringify(result)).toBe('{"__proto__":{"keep":1,"added":2},"x":1,"prototype":{"p":true}}');
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).added).toBeUndefined();
  });

  it('mutates neither input', () => {
    const target = { a: { b: 1 } };
    const patch = { a: { c: 2 } };
    applyMergePatch(target, patch);
    expect(target).toEqual({ a: { b: 1 } });
    expect(patch).toEqual({ a: { c: 2 } });
  });
});
