import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Sql } from './db/database.ts';

/**
 * What the service counts, in Prometheus' terms (`GET /metrics`). One registry per service
 * (never prom-client's global one: tests run many apps in one process). Counters are this
 * process's; the slot gauge is the database's truth, read once per scrape, so every replica
 * reports the same numbers. No label carries a user, a project or an id.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly imagesFinished: Counter<'provider' | 'outcome'>;
  readonly providerCallSeconds: Histogram<'provider' | 'outcome'>;
  readonly providerErrors: Counter<'provider' | 'code'>;
  readonly providerRetries: Counter<'provider'>;
  readonly providerRateLimited: Counter<'provider'>;
  readonly leasesExpired: Counter<'outcome'>;
  readonly claimBatchSize: Histogram;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpSeconds: Histogram<'method' | 'route' | 'status'>;
  readonly eventStreamsOpen: Gauge;
  readonly webhookDeliveries: Counter<'outcome'>;
}

const SLOT_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;

/**
 * Slots by status in one statement: every project's folded counters plus the changes not yet
 * folded into them (see the project_slot_changes migration); exact at the moment it runs,
 * whichever replica asks, and a read of the projects, not of every image.
 */
export async function slotCounts(sql: Sql): Promise<Record<(typeof SLOT_STATUSES)[number], number>> {
  const [row] = await sql<{ queued: number; running: number; succeeded: number; failed: number }[]>`
    SELECT coalesce(sum(q), 0)::bigint AS queued, coalesce(sum(r), 0)::bigint AS running,
           coalesce(sum(s), 0)::bigint AS succeeded, coalesce(sum(f), 0)::bigint AS failed
    FROM (
      SELECT slots_queued AS q, slots_running AS r, slots_succeeded AS s, slots_failed AS f FROM content_creation_requests
      UNION ALL
      SELECT queued, running, succeeded, failed FROM project_slot_changes
    ) counts`;
  return { queued: row!.queued, running: row!.running, succeeded: row!.succeeded, failed: row!.failed };
}

export function createMetrics(sql: Sql): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: 'sceneworks_slots',
    help: 'Image slots by status, read from the database at scrape time (the same on every replica).',
    labelNames: ['status'],
    registers,
    async collect() {
      const counts = await slotCounts(sql);
      for (const status of SLOT_STATUSES) this.set({ status }, counts[status]);
    },
  });
  return {
    registry,
    imagesFinished: new Counter({
      name: 'sceneworks_images_finished_total',
      help: 'Slots this process finished, by provider and outcome (succeeded, failed).',
      labelNames: ['provider', 'outcome'],
      registers,
    }),
    providerCallSeconds: new Histogram({
      name: 'sceneworks_provider_call_duration_seconds',
      help: 'Duration of each call to an image provider, by provider and outcome (ok, error).',
      labelNames: ['provider', 'outcome'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120],
      registers,
    }),
    providerErrors: new Counter({
      name: 'sceneworks_provider_errors_total',
      help: 'Failed provider calls, by provider and error code (rate_limited, server, network, timeout, ...).',
      labelNames: ['provider', 'code'],
      registers,
    }),
    providerRetries: new Counter({
      name: 'sceneworks_provider_retries_total',
      help: 'Provider calls repeated after a transient failure.',
      labelNames: ['provider'],
      registers,
    }),
    providerRateLimited: new Counter({
      name: 'sceneworks_provider_rate_limited_total',
      help: 'HTTP 429 answers from providers.',
      labelNames: ['provider'],
      registers,
    }),
    leasesExpired: new Counter({
      name: 'sceneworks_leases_expired_total',
      help: 'Slots whose worker stopped renewing its lease, recovered by this process: requeued, or failed after their last attempt.',
      labelNames: ['outcome'],
      registers,
    }),
    claimBatchSize: new Histogram({
      name: 'sceneworks_claim_batch_size',
      help: 'Slots claimed per claim statement.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    }),
    httpRequests: new Counter({
      name: 'sceneworks_http_requests_total',
      help: 'HTTP requests answered, by method, route (the pattern, never the path) and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpSeconds: new Histogram({
      name: 'sceneworks_http_request_duration_seconds',
      help: 'Time to the response headers, by method, route and status (event streams: to the stream start).',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'sceneworks_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by outcome: delivered, retrying, failed (no retry left or refused address), gone (410).',
      labelNames: ['outcome'],
      registers,
    }),
    eventStreamsOpen: new Gauge({
      name: 'sceneworks_event_streams_open',
      help: 'Event streams (GET /projects/:id/events) open in this process.',
      registers,
    }),
  };
}
