import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const PROVIDERS = ['local', 'openai', 'replicate', 'gemini', 'stability'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

const optionalUrl = z.url({ protocol: /^https?$/ }).optional();
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
/** A comma-separated list of items, each checked by `item`. */
const list = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(item));

/** Whether an interface name binds only this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The environment, validated once at start. Nothing else reads process.env. */
export const ConfigSchema = z
  .object({
    PORT: int(0, 65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATA_DIR: z.string().min(1).default('.data'),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
    DATABASE_POOL_SIZE: int(2, 200).optional(),
    PUBLIC_BASE_URL: optionalUrl,
    GENERATION_CONCURRENCY: int(1, 1000).default(8),
    LEASE_MS: int(1_000, 3_600_000).default(30_000),
    POLL_INTERVAL_MS: int(10, 60_000).default(1_000),
    SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
    MAX_ATTEMPTS: int(1, 100).default(3),
    RETRY_BASE_MS: int(1, 600_000).default(1_000),
    PROVIDER_TIMEOUT_MS: int(100, 3_600_000).default(120_000),
    PROJECT_CACHE_MB: int(0, 65_536).default(64),
    SSE_KEEP_ALIVE_MS: int(1_000, 300_000).default(15_000),
    MAX_BODY_BYTES: int(1_024, 64 * 1024 * 1024).default(4 * 1024 * 1024),
    RUNNER: z.enum(['on', 'off']).default('on'),
    /** Single-user mode acts as this owner (e.g. an existing user of an adopted legacy database). */
    OWNER_ID: z.uuid().default('00000000-0000-4000-8000-000000000001'),
    LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),

    /** none: one owner (OWNER_ID), loopback only unless ALLOW_UNAUTHENTICATED; jwt: Supabase-style bearer tokens. */
    AUTH: z.enum(['none', 'jwt']).default('none'),
    ALLOW_UNAUTHENTICATED: bool.default(false),
    /** Legacy image URLs (downloads, archive, rehost) may point at private, loopback or link-local addresses. */
    LEGACY_FETCH_ALLOW_PRIVATE: bool.default(false),
    /** Signs every webhook delivery (Standard Webhooks): `whsec_` and base64. Projects may name a webhook only when it is set. */
    WEBHOOK_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/]{16,}={0,2}$/, 'whsec_ followed by base64 (at least 12 bytes)').optional(),
    /** Webhook targets on private, loopback or link-local addresses are refused unless this is true. */
    WEBHOOK_ALLOW_PRIVATE: bool.default(false),
    /** Seconds before each retry of a failed delivery; past the last one the event fails (default: about 23 h in all). */
    WEBHOOK_RETRY_SCHEDULE_S: list(z.string().regex(/^\d+(\.\d+)?$/, 'seconds').transform(Number).pipe(z.number().max(86_400))).default([5, 30, 120, 600, 1800, 3600, 10_800, 21_600, 43_200]),
    WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
    WEBHOOK_POLL_MS: int(10, 60_000).default(1_000),
    WEBHOOK_CONCURRENCY: int(1, 100).default(8),
    /** Default: <SUPABASE_URL>/auth/v1/.well-known/jwks.json when SUPABASE_URL is set. */
    JWT_JWKS_URL: optionalUrl,
    /** The legacy shared secret (HS256). */
    JWT_SECRET: z.string().min(16, 'at least 16 characters').optional(),
    /** GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>` when set; otherwise an operator (AUTH=jwt) or anyone on loopback (AUTH=none). */
    METRICS_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
    JWT_AUDIENCE: z.string().min(1).default('authenticated'),
    /** Default: <SUPABASE_URL>/auth/v1 when SUPABASE_URL is set; else not checked. */
    JWT_ISSUER: z.string().min(1).optional(),
    JWT_ALLOW_ANONYMOUS: bool.default(true),
    JWT_CLOCK_TOLERANCE_S: int(0, 600).default(30),
    /** Writes (POST, PATCH, DELETE) per owner per minute; 0 is no limit. Unset: 120 under AUTH=jwt, none without. */
    RATE_LIMIT_PER_MIN: int(0, 1_000_000).optional(),
    /** Queued + running slots one owner may have; a project that would pass it is refused. */
    MAX_PENDING_SLOTS_PER_OWNER: int(1, 100_000_000).default(10_000),
    /** Images a regenerate replaced, kept per slot as versions (0: removed at once). */
    IMAGE_VERSIONS_KEPT: int(0, 1000).default(10),
    /** Other origins (scheme://host[:port]) whose pages may call the API from a browser. */
    CORS_ORIGINS: list(z.url({ protocol: /^https?$/ }).transform((u) => new URL(u).origin)).default([]),
    /** Host names this service answers for (besides its PUBLIC_BASE_URL's, and loopback names when bound to loopback). */
    ALLOWED_HOSTS: list(z.string().regex(/^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/i, 'a host name, without port').transform((h) => h.toLowerCase())).default([]),

    IMAGE_PROVIDER: z.enum(PROVIDERS).default('local'),
    LOCAL_PROVIDER_DELAY_MS: int(0, 600_000).default(0),
    /** Calls per minute to the local renderer, deployment-wide (as <PROVIDER>_RPM for the vendors). */
    LOCAL_RPM: int(1, 1_000_000).optional(),
    /** The window the <PROVIDER>_RPM limits count over (a minute; tests shorten it). */
    PROVIDER_RPM_WINDOW_MS: int(100, 3_600_000).default(60_000),
    /** process: each <PROVIDER>_CONCURRENCY is per replica; cluster: for all replicas together (slots in PostgreSQL). */
    PROVIDER_CONCURRENCY_SCOPE: z.enum(['process', 'cluster']).default('process'),
    /** A provider's circuit opens after this many transient failures in a row, for PROVIDER_CIRCUIT_OPEN_MS (failover lists skip it meanwhile). */
    PROVIDER_CIRCUIT_FAILURES: int(1, 1000).default(5),
    PROVIDER_CIRCUIT_OPEN_MS: int(100, 3_600_000).default(30_000),
    /** A JSON list of image prices ({provider, model, size, usd}) before the built-in ones (generation/prices.ts). */
    PRICES_FILE: z.string().min(1).optional(),
    OPENAI_API_KEY: z.string().min(1).optional(),
    OPENAI_BASE_URL: optionalUrl,
    OPENAI_MODEL: z.string().min(1).default('gpt-image-1'),
    OPENAI_CONCURRENCY: int(1, 1000).optional(),
    OPENAI_RPM: int(1, 1_000_000).optional(),
    REPLICATE_API_TOKEN: z.string().min(1).optional(),
    REPLICATE_BASE_URL: optionalUrl,
    REPLICATE_MODEL: z.string().min(1).default('black-forest-labs/flux-schnell'),
    REPLICATE_CONCURRENCY: int(1, 1000).optional(),
    REPLICATE_RPM: int(1, 1_000_000).optional(),
    GEMINI_API_KEY: z.string().min(1).optional(),
    GEMINI_BASE_URL: optionalUrl,
    GEMINI_MODEL: z.string().min(1).default('gemini-2.5-flash-image'),
    GEMINI_CONCURRENCY: int(1, 1000).optional(),
    GEMINI_RPM: int(1, 1_000_000).optional(),
    STABILITY_API_KEY: z.string().min(1).optional(),
    STABILITY_BASE_URL: optionalUrl,
    STABILITY_MODEL: z.string().min(1).default('core'),
    STABILITY_CONCURRENCY: int(1, 1000).optional(),
    STABILITY_RPM: int(1, 1_000_000).optional(),

    STORAGE: z.enum(['local', 'supabase']).default('local'),
    SUPABASE_URL: optionalUrl,
    /** The Storage API's own URL, used as is (a bare storage server at the root of its host). */
    SUPABASE_STORAGE_URL: optionalUrl,
    SUPABASE_SERVICE_ROLE_KEY: z.string().min(1).optional(),
    STORAGE_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,62}$/, 'a bucket name: lower-case letters, digits, . _ -').default('sceneworks'),
    /** Unset: public without authentication, private (signed URLs) under AUTH=jwt. */
    STORAGE_PUBLIC: bool.optional(),
    /** Signs the local store's private URLs; unset: a random secret kept in DATA_DIR (one machine). */
    FILES_URL_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    SIGNED_URL_TTL_S: int(60, 7 * 24 * 3600).default(3600),
  })
  .superRefine((c, ctx) => {
    const keyOf: Record<ProviderName, keyof typeof c | null> = {
      local: null,
      openai: 'OPENAI_API_KEY',
      replicate: 'REPLICATE_API_TOKEN',
      gemini: 'GEMINI_API_KEY',
      stability: 'STABILITY_API_KEY',
    };
    const key = keyOf[c.IMAGE_PROVIDER];
    if (key && !c[key]) ctx.addIssue({ code: 'custom', path: ['IMAGE_PROVIDER'], message: `"${c.IMAGE_PROVIDER}" needs ${key}` });
    if (c.AUTH === 'none' && !isLoopbackHost(c.HOST) && !c.ALLOW_UNAUTHENTICATED) {
      ctx.addIssue({
        code: 'custom',
        path: ['HOST'],
        message: `${c.HOST} is not a loopback address: anyone who can reach it could use every project. Set AUTH=jwt, or ALLOW_UNAUTHENTICATED=true if something in front of the service authenticates`,
      });
    }
    if (c.AUTH === 'jwt' && !c.JWT_SECRET && !c.JWT_JWKS_URL && !c.SUPABASE_URL) {
      ctx.addIssue({ code: 'custom', path: ['AUTH'], message: 'AUTH=jwt needs keys: SUPABASE_URL (its JWKS), JWT_JWKS_URL and/or JWT_SECRET' });
    }
    if (c.STORAGE === 'supabase') {
      if (!c.SUPABASE_SERVICE_ROLE_KEY) ctx.addIssue({ code: 'custom', path: ['SUPABASE_SERVICE_ROLE_KEY'], message: 'required when STORAGE=supabase' });
      // Both may be set: SUPABASE_URL still gives AUTH=jwt its keys and issuer, and the Storage API
      // may live elsewhere (a bare storage server, Supabase's direct storage host).
      if (!c.SUPABASE_URL && !c.SUPABASE_STORAGE_URL) {
        ctx.addIssue({
          code: 'custom',
          path: ['SUPABASE_URL'],
          message: 'with STORAGE=supabase, set SUPABASE_URL (the project URL) or SUPABASE_STORAGE_URL (the Storage API itself; it wins when both are set)',
        });
      }
    }
  });

/** Defaults that depend on other settings, resolved once. */
function resolve(c: z.infer<typeof ConfigSchema>) {
  const supabaseAuth = c.SUPABASE_URL ? `${c.SUPABASE_URL.replace(/\/+$/, '')}/auth/v1` : undefined;
  return {
    ...c,
    JWT_JWKS_URL: c.JWT_JWKS_URL ?? (supabaseAuth && (c.AUTH === 'jwt' ? `${supabaseAuth}/.well-known/jwks.json` : undefined)),
    JWT_ISSUER: c.JWT_ISSUER ?? supabaseAuth,
    STORAGE_PUBLIC: c.STORAGE_PUBLIC ?? c.AUTH === 'none',
    RATE_LIMIT_PER_MIN: c.RATE_LIMIT_PER_MIN ?? (c.AUTH === 'jwt' ? 120 : 0),
  };
}

export type Config = Readonly<ReturnType<typeof resolve>>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.problems = problems;
  }
}

/** Empty strings count as unset, so `FOO= npm start` means "use the default". */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = ConfigSchema.safeParse(present);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  return Object.freeze(resolve(result.data));
}
