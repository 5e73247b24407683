import type { Sql } from './database.ts';

/**
 * Provider limits shared by every replica (table provider_limits). Times are the database's
 * clock, so replicas whose clocks differ still agree; what comes back is a duration to wait.
 */

/** Nobody calls `provider` for `ms` from now (a longer pause already set wins). */
export async function pauseProvider(sql: Sql, provider: string, ms: number): Promise<void> {
  await sql`
    INSERT INTO provider_limits (provider, paused_until) VALUES (${provider}, clock_timestamp() + make_interval(secs => ${ms / 1000}))
    ON CONFLICT (provider) DO UPDATE SET paused_until = greatest(provider_limits.paused_until, excluded.paused_until)`;
}

/** How long `provider` is still paused for, in ms (0: not paused). */
export async function providerPauseLeft(sql: Sql, provider: string): Promise<number> {
  const [row] = await sql<{ ms: number }[]>`
    SELECT greatest(0, extract(epoch FROM paused_until - clock_timestamp()) * 1000)::float8 AS ms
    FROM provider_limits WHERE provider = ${provider}`;
  return row?.ms ?? 0;
}

/**
 * Room left for the network: a call reaches the provider some time after the moment it was
 * given, and not always the same time (a new connection, a busy machine: tens of ms), so calls
 * spaced exactly window / limit apart could arrive limit + 1 in one of the provider's windows.
 * The spacing covers this much more: 1% of the window, at least 250 ms (0.6 s of a minute).
 */
export function jitterAllowanceMs(windowMs: number): number {
  return Math.max(250, windowMs * 0.01);
}

/**
 * Reserves the next call of `provider` under a limit of `perWindow` calls per `windowMs`:
 * calls are spaced (windowMs + jitterAllowanceMs) / perWindow apart, deployment-wide, so any
 * window of windowMs holds at most perWindow of them, as the provider counts them. Returns
 * how long to wait before calling (0: now).
 */
export async function reserveProviderCall(sql: Sql, provider: string, perWindow: number, windowMs: number): Promise<number> {
  const spacingS = (windowMs + jitterAllowanceMs(windowMs)) / perWindow / 1000;
  const [row] = await sql<{ ms: number }[]>`
    INSERT INTO provider_limits AS l (provider, next_call_at) VALUES (${provider}, clock_timestamp() + make_interval(secs => ${spacingS}))
    ON CONFLICT (provider) DO UPDATE SET next_call_at = greatest(l.next_call_at, clock_timestamp()) + make_interval(secs => ${spacingS})
    RETURNING greatest(0, extract(epoch FROM (l.next_call_at - make_interval(secs => ${spacingS})) - clock_timestamp()) * 1000)::float8 AS ms`;
  return row!.ms;
}

/** Makes sure `provider` has rows 1..limit in provider_call_slots (idempotent). */
export async function ensureProviderSlots(sql: Sql, provider: string, limit: number): Promise<void> {
  await sql`
    INSERT INTO provider_call_slots (provider, slot) SELECT ${provider}, g FROM generate_series(1, ${limit}) g
    ON CONFLICT DO NOTHING`;
}

/**
 * Takes one of `provider`'s `limit` call slots for `holder`, for `leaseMs` (a holder that dies
 * frees it by expiry). Null when all are taken: deployment-wide, `limit` calls are in flight.
 */
export async function acquireProviderSlot(sql: Sql, provider: string, limit: number, holder: string, leaseMs: number): Promise<number | null> {
  const [row] = await sql<{ slot: number }[]>`
    UPDATE provider_call_slots s SET holder = ${holder}, expires_at = clock_timestamp() + make_interval(secs => ${leaseMs / 1000})
    WHERE (s.provider, s.slot) = (
      SELECT provider, slot FROM provider_call_slots
      WHERE provider = ${provider} AND slot <= ${limit} AND (holder IS NULL OR expires_at < clock_timestamp())
      ORDER BY slot LIMIT 1
      FOR UPDATE SKIP LOCKED)
    RETURNING s.slot`;
  return row?.slot ?? null;
}

export async function releaseProviderSlot(sql: Sql, provider: string, slot: number, holder: string): Promise<void> {
  await sql`UPDATE provider_call_slots SET holder = NULL, expires_at = NULL WHERE provider = ${provider} AND slot = ${slot} AND holder = ${holder}`;
}
