import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Pool } from '../../src/db/database.ts';
import { purgeIdleRateLimits, takeWriteToken } from '../../src/db/rate-limits.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The limiter, statement by statement, against a real PostgreSQL. Time never passes in these
 * tests: refill and idleness are made by moving a key's tat in SQL, never by waiting.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

const keyOf = () => `owner:${randomUUID()}`;

async function takeMany(sql: Pool, key: string, perMinute: number, n: number) {
  const tokens = [];
  for (let i = 0; i < n; i++) tokens.push(await takeWriteToken(sql, key, perMinute));
  return tokens;
}

/** Moves a key's state `seconds` into the past, as if that much time had gone by. */
async function elapse(key: string, seconds: number) {
  await db.sql`UPDATE owner_rate_limits SET tat = tat - make_interval(secs => ${seconds}) WHERE key = ${key}`;
}

describe('takeWriteToken', () => {
  it('allows a burst of exactly perMinute, then refuses', async () => {
    const key = keyOf();
    const tokens = await takeMany(db.sql, key, 5, 7);
    expect(tokens.map((t) => t.allowed)).toEqual([true, true, true, true, true, false, false]);
    expect(tokens.map((t) => t.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0]);
    expect(tokens.every((t) => t.limit === 5)).toBe(true);
  });

  it('allows a whole burst when the interval is not a whole number of seconds (7 per minute)', async () => {
    const key = keyOf();
    const tokens = await takeMany(db.sql, key, 7, 8);
    expect(tokens.map((t) => t.remaining)).toEqual([6, 5, 4, 3, 2, 1, 0, 0]);
    expect(tokens[7]!.allowed).toBe(false);
  });

  it('says when to retry: whole seconds, one interval after the refusal, and resets agree', async () => {
    const key = keyOf();
    // 6 per minute: one write every 10 s.
    const tokens = await takeMany(db.sql, key, 6, 7);
    const refused = tokens[6]!;
    expect(refused).toMatchObject({ allowed: false, remaining: 0, limit: 6 });
    expect(Number.isInteger(refused.retryAfterS)).toBe(true);
    // One interval (10 s) from the refused take; 9 only if the 7 takes spanned over a second.
    expect(refused.retryAfterS).toBeGreaterThanOrEqual(9);
    expect(refused.retryAfterS).toBeLessThanOrEqual(10);
    expect(refused.resetS).toBe(refused.retryAfterS);
    for (const t of tokens.slice(0, 6)) {
      expect(t.retryAfterS).toBe(0);
      expect(Number.isInteger(t.resetS)).toBe(true);
      // One more write comes back within one interval of each allowed one.
      expect(t.resetS).toBeGreaterThanOrEqual(1);
      expect(t.resetS).toBeLessThanOrEqual(10);
    }
  });

  it('tells a refused take less and less to wait as its next write comes closer', async () => {
    const key = keyOf();
    await takeMany(db.sql, key, 6, 6);
    await elapse(key, 6);
    const refused = await takeWriteToken(db.sql, key, 6);
    expect(refused.allowed).toBe(false);
    // 10 s from the burst, 6 of them gone: 4, or 3 if these statements spanned over a second.
    expect(refused.retryAfterS).toBeGreaterThanOrEqual(3);
    expect(refused.retryAfterS).toBeLessThanOrEqual(4);
  });

  it('refuses without moving the state: a refused take never delays the next allowed one', async () => {
    const key = keyOf();
    await takeMany(db.sql, key, 6, 6);
    const [before] = await db.sql<{ tat: string }[]>`SELECT tat FROM owner_rate_limits WHERE key = ${key}`;
    await takeMany(db.sql, key, 6, 20);
    const [after] = await db.sql<{ tat: string }[]>`SELECT tat FROM owner_rate_limits WHERE key = ${key}`;
    expect(after!.tat).toBe(before!.tat);
    await elapse(key, 10);
    expect((await takeWriteToken(db.sql, key, 6)).allowed).toBe(true);
  });

  it('refills at perMinute/60 per second', async () => {
    const key = keyOf();
    // 6 per minute: one write back every 10 s; 25 s give back two of them.
    await takeMany(db.sql, key, 6, 6);
    expect((await takeWriteToken(db.sql, key, 6)).allowed).toBe(false);
    await elapse(key, 25);
    const tokens = await takeMany(db.sql, key, 6, 4);
    expect(tokens.map((t) => t.allowed)).toEqual([true, true, false, false]);
    expect(tokens.map((t) => t.remaining)).toEqual([1, 0, 0, 0]);
  });

  it('never banks more than one burst, however long a key was idle', async () => {
    const key = keyOf();
    await takeWriteToken(db.sql, key, 5);
    await elapse(key, 3600);
    const tokens = await takeMany(db.sql, key, 5, 7);
    expect(tokens.filter((t) => t.allowed)).toHaveLength(5);
  });

  it('keeps keys independent', async () => {
    const a = keyOf();
    const b = keyOf();
    await takeMany(db.sql, a, 3, 3);
    expect((await takeWriteToken(db.sql, a, 3)).allowed).toBe(false);
    const tokens = await takeMany(db.sql, b, 3, 4);
    expect(tokens.map((t) => t.allowed)).toEqual([true, true, true, false]);
  });

  it('refuses a perMinute that is not a positive integer', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      await expect(takeWriteToken(db.sql, keyOf(), bad)).rejects.toThrow(RangeError);
    }
  });

  it('never passes the limit with concurrent takes from two replicas on one database', async () => {
    // Two pools are two replicas. 6 per minute (one write per 10 s): the burst of 200 is over
    // long before a second write could come back, so exactly 6 are allowed.
    const replicaA = connect(db.url, 8);
    const replicaB = connect(db.url, 8);
    try {
      const key = keyOf();
      const takes = Array.from({ length: 200 }, (_, i) => takeWriteToken(i % 2 === 0 ? replicaA : replicaB, key, 6));
      const tokens = await Promise.all(takes);
      expect(tokens.filter((t) => t.allowed)).toHaveLength(6);
      // Every allowed take saw a different remaining count: they were decided one after another.
      expect(
        tokens
          .filter((t) => t.allowed)
          .map((t) => t.remaining)
          .sort((x, y) => x - y),
      ).toEqual([0, 1, 2, 3, 4, 5]);
      // Each refusal says when to retry from the state that refused it, not from an older
      // snapshot that had seen fewer writes (up to one interval, 10 s, after the burst).
      for (const t of tokens.filter((t) => !t.allowed)) expect(t.retryAfterS).toBeGreaterThanOrEqual(5);
    } finally {
      await Promise.all([replicaA.end({ timeout: 5 }), replicaB.end({ timeout: 5 })]);
    }
  });
});

describe('purgeIdleRateLimits', () => {
  it('deletes idle keys only, and a purge never hands a busy key a new burst', async () => {
    const idle = keyOf();
    const busy = keyOf();
    await takeWriteToken(db.sql, idle, 5);
    await elapse(idle, 3600);
    await takeMany(db.sql, busy, 5, 5);

    const deleted = await purgeIdleRateLimits(db.sql, 60_000);
    expect(deleted).toBeGreaterThanOrEqual(1);
    const keys = (await db.sql<{ key: string }[]>`SELECT key FROM owner_rate_limits WHERE key IN (${idle}, ${busy})`).map((r) => r.key);
    expect(keys).toEqual([busy]);
    expect((await takeWriteToken(db.sql, busy, 5)).allowed).toBe(false);
  });

  it('refuses a negative age, which would delete live state', async () => {
    const busy = keyOf();
    await takeMany(db.sql, busy, 5, 5);
    await expect(purgeIdleRateLimits(db.sql, -3_600_000)).rejects.toThrow(RangeError);
    expect((await takeWriteToken(db.sql, busy, 5)).allowed).toBe(false);
  });
});
