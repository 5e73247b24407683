import { anyAddress, createOutboundFetch, publicAddressesOnly, type OutboundFetch } from './net/outbound.ts';
import path from 'node:path';
import { createTokenVerifier } from './auth/tokens.ts';
import { isLoopbackHost, type Config } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import type { Scope } from './db/scope.ts';
import { createProjectCache, type ProjectCache } from './projects/project-cache.ts';
import { createProjectEventsHub, type ProjectEventsHub } from './events/project-events.ts';
import { createRunner, type Runner } from './generation/runner.ts';
import type { Authentication } from './http/auth.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createWebhookDeliverer, type WebhookDeliverer } from './webhooks/deliverer.ts';
import { loadPrices, type PriceOf } from './generation/prices.ts';
import type { ImageProvider } from './providers/provider.ts';
import { createProviders } from './providers/registry.ts';
import { createLocalStore, type LocalObjectStore } from './storage/local.ts';
import type { ObjectStore } from './storage/store.ts';

/** The owner of every project in single-user mode (no authentication configured). */
export const LOCAL_OWNER_ID = '00000000-0000-4000-8000-000000000001';

export interface Deps {
  config: Config;
  log: Logger;
  db: Database;
  store: ObjectStore;
  /** The local store, when it is the store: it serves GET /files. */
  localStore: LocalObjectStore | undefined;
  providers: ReadonlyMap<string, ImageProvider>;
  runner: Runner;
  /** Sends webhook_events (WEBHOOK_SECRET set); started with the runner. */
  webhooks: WebhookDeliverer | undefined;
  /** What GET /metrics shows (this process's counters, the database's slot counts). */
  metrics: Metrics;
  projectCache: ProjectCache;
  /** Image changes (made by any replica) for GET /projects/:id/events: one LISTEN per process. */
  projectEvents: ProjectEventsHub;
  /**
   * Single-owner mode (no authentication): every request acts as OWNER_ID, and projects with
   * no owner (adopted legacy rows) are that owner's.
   */
  singleOwner: Scope;
  /** Who is calling: single-owner mode, or bearer tokens checked by a verifier built once (its key cache). */
  authentication: Authentication;
  /** How a legacy row's image URL is fetched: public addresses only unless LEGACY_FETCH_ALLOW_PRIVATE. */
  legacyFetch: OutboundFetch;
  close(): Promise<void>;
}

export function publicBaseUrl(config: Config): string {
  if (config.PUBLIC_BASE_URL) return config.PUBLIC_BASE_URL;
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`;
}

/** <PROVIDER>_RPM by provider name, for those that have one. */
function providerRpm(c: Config): Map<string, number> {
  const limits: [string, number | undefined][] = [
    ['local', c.LOCAL_RPM],
    ['openai', c.OPENAI_RPM],
    ['replicate', c.REPLICATE_RPM],
    ['gemini', c.GEMINI_RPM],
    ['stability', c.STABILITY_RPM],
  ];
  return new Map(limits.filter((l): l is [string, number] => l[1] !== undefined));
}

export interface DepsOverrides {
  providers?: ReadonlyMap<string, ImageProvider> | undefined;
  /** Wraps the configured store (tests inject faults this way). */
  wrapStore?: ((store: ObjectStore) => ObjectStore) | undefined;
}

/** Builds everything once: database (migrated), store (ready), providers, runner. */
export async function createDeps(config: Config, log: Logger, overrides: DepsOverrides = {}): Promise<Deps> {
  const poolSize = config.DATABASE_POOL_SIZE ?? 20;
  const db = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize, log });
  let store: ObjectStore;
  let localStore: LocalObjectStore | undefined;
  try {
    await migrate(db.url, log);
    const [row] = await db.sql<{ maxConnections: number }[]>`SELECT current_setting('max_connections')::int AS max_connections`;
    if (row && poolSize > row.maxConnections - 3) {
      // Connections past the server's limit fail with "too many clients": say so now, not under load.
      log.warn({ poolSize, maxConnections: row.maxConnections }, 'DATABASE_POOL_SIZE exceeds what the server accepts; lower it');
    }
    if (config.STORAGE === 'supabase') {
      // Loaded only when used, like the vendors' SDKs (see createProviders).
      const { createSupabaseStore } = await import('./storage/supabase.ts');
      store = createSupabaseStore({
        // The Storage API's own URL when given; else the project's (SUPABASE_URL may be there for AUTH=jwt alone).
        ...(config.SUPABASE_STORAGE_URL ? { storageUrl: config.SUPABASE_STORAGE_URL } : { url: config.SUPABASE_URL }),
        serviceRoleKey: config.SUPABASE_SERVICE_ROLE_KEY!,
        bucket: config.STORAGE_BUCKET,
        public: config.STORAGE_PUBLIC,
        signedUrlTtlS: config.SIGNED_URL_TTL_S,
      });
    } else {
      store = localStore = createLocalStore({
        root: path.join(config.DATA_DIR, 'files'),
        publicBaseUrl: publicBaseUrl(config),
        // Private: answers carry signed URLs and GET /files refuses any other.
        signed: config.STORAGE_PUBLIC
          ? undefined
          : { ttlS: config.SIGNED_URL_TTL_S, secret: config.FILES_URL_SECRET, secretFile: path.join(config.DATA_DIR, 'files-url.key') },
      });
    }
    await store.init?.();
    if (overrides.wrapStore) store = overrides.wrapStore(store);
  } catch (err) {
    await db.close();
    throw err;
  }
  const providers = overrides.providers ?? (await createProviders(config));
  const metrics = createMetrics(db.sql);
  let priceOf: PriceOf;
  try {
    priceOf = loadPrices(config.PRICES_FILE);
  } catch (err) {
    await db.close();
    throw err;
  }
  const runner = createRunner({
    metrics,
    sql: db.sql,
    providers,
    defaultProvider: config.IMAGE_PROVIDER,
    store,
    log: log.child({ component: 'runner' }),
    concurrency: config.GENERATION_CONCURRENCY,
    leaseMs: config.LEASE_MS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    maxAttempts: config.MAX_ATTEMPTS,
    retryBaseMs: config.RETRY_BASE_MS,
    providerTimeoutMs: config.PROVIDER_TIMEOUT_MS,
    versionsKept: config.IMAGE_VERSIONS_KEPT,
    providerRpm: providerRpm(config),
    rpmWindowMs: config.PROVIDER_RPM_WINDOW_MS,
    clusterConcurrency: config.PROVIDER_CONCURRENCY_SCOPE === 'cluster',
    circuitFailures: config.PROVIDER_CIRCUIT_FAILURES,
    circuitOpenMs: config.PROVIDER_CIRCUIT_OPEN_MS,
    priceOf,
  });
  // A cached answer must never outlive the signed URLs inside it.
  const maxAgeMs = store.signedUrlTtlS ? Math.min(60_000, (store.signedUrlTtlS * 1000) / 4) : 60_000;
  const singleOwner: Scope = Object.freeze({ ownerId: config.OWNER_ID, unowned: true });
  if (config.AUTH === 'none' && !isLoopbackHost(config.HOST)) {
    // Only reachable with ALLOW_UNAUTHENTICATED=true (config refuses it otherwise).
    log.warn({ host: config.HOST }, 'AUTH=none on a non-loopback address: anyone who reaches this port can use every project (ALLOW_UNAUTHENTICATED=true)');
  }
  const webhooks = config.WEBHOOK_SECRET
    ? createWebhookDeliverer({
        sql: db.sql,
        secret: config.WEBHOOK_SECRET,
        fetch: createOutboundFetch(config.WEBHOOK_ALLOW_PRIVATE ? anyAddress : publicAddressesOnly),
        log: log.child({ component: 'webhooks' }),
        metrics,
        scheduleMs: config.WEBHOOK_RETRY_SCHEDULE_S.map((s) => s * 1000),
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        pollMs: config.WEBHOOK_POLL_MS,
        concurrency: config.WEBHOOK_CONCURRENCY,
      })
    : undefined;
  const projectEvents = createProjectEventsHub({ sql: db.sql, store, log: log.child({ component: 'events' }) });
  log.info({ providers: [...providers.keys()], defaultProvider: config.IMAGE_PROVIDER, storage: store.name }, 'ready');
  return {
    config,
    log,
    db,
    store,
    localStore,
    providers,
    runner,
    webhooks,
    metrics,
    projectCache: createProjectCache({ maxBytes: config.PROJECT_CACHE_MB * 1024 * 1024, maxAgeMs }),
    projectEvents,
    singleOwner,
    authentication:
      config.AUTH === 'jwt'
        ? {
            mode: 'jwt',
            verifier: createTokenVerifier({
              jwksUrl: config.JWT_JWKS_URL,
              secret: config.JWT_SECRET,
              audience: config.JWT_AUDIENCE,
              issuer: config.JWT_ISSUER,
              allowAnonymous: config.JWT_ALLOW_ANONYMOUS,
              clockToleranceS: config.JWT_CLOCK_TOLERANCE_S,
            }),
          }
        : { mode: 'none', singleOwner },
    legacyFetch: createOutboundFetch(config.LEGACY_FETCH_ALLOW_PRIVATE ? anyAddress : publicAddressesOnly),
    async close() {
      await projectEvents.close();
      await webhooks?.stop();
      await runner.stop(config.SHUTDOWN_GRACE_MS);
      await db.close();
    },
  };
}
