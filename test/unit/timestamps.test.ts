import { describe, expect, it } from 'vitest';
import { toIso } from '../../src/db/database.ts';

describe('toIso', () => {
  it("turns PostgreSQL's UTC text into ISO-8601 with milliseconds", () => {
    expect(toIso('2026-11-22 00:04:52.622913+00')).toBe('2026-11-22T00:04:52.622Z');
    expect(toIso('2026-11-22 00:04:52.6+00')).toBe('2026-11-22T00:04:52.600Z');
    expect(toIso('2026-11-22 00:04:52+00')).toBe('2026-11-22T00:04:52.000Z');
  });
  it('agrees with Date for what Date can represent', () => {
    const s = '2024-02-29 23:59:59.999+00';
    expect(toIso(s)).toBe(new Date('2024-02-29T23:59:59.999Z').toISOString());
  });
});

describe('toIso on timestamp without time zone (adopted legacy columns)', () => {
  it('reads the value as UTC', () => {
    expect(toIso('2021-03-04 05:06:07.891011')).toBe('2021-03-04T05:06:07.891Z');
    expect(toIso('2021-03-04 05:06:07')).toBe('2021-03-04T05:06:07.000Z');
  });
});
