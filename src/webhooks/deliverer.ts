import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { Webhook } from 'standardwebhooks';
import type { Pool } from '../db/database.ts';
import { claimWebhookEvents, recordWebhookAttempt, type AttemptOutcome, type ClaimedWebhookEvent } from '../db/webhooks.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { refusalIn, type OutboundFetch } from '../net/outbound.ts';
import { retryAfterMs } from '../providers/errors.ts';

export interface WebhookDelivererOptions {
  sql: Pool;
  /** WEBHOOK_SECRET (`whsec_<base64>`): every delivery is signed with it (Standard Webhooks). */
  secret: string;
  /** Outbound HTTP: private addresses refused unless WEBHOOK_ALLOW_PRIVATE. */
  fetch: OutboundFetch;
  log: Logger;
  metrics?: Pick<Metrics, 'webhookDeliveries'> | undefined;
  /** Delay before each retry, in ms (its length is the number of retries); past its end the event fails. */
  scheduleMs: readonly number[];
  timeoutMs: number;
  pollMs: number;
  /** Deliveries in flight at once. */
  concurrency: number;
  workerId?: string;
}

export interface WebhookDeliverer {
  start(): void;
  /** An event may be due: look now instead of at the next poll. */
  wake(): void;
  stop(): Promise<void>;
}

/**
 * Sends the outbox (webhook_events) at least once: claims due events with SKIP LOCKED under a
 * lease, POSTs each signed (webhook-id, the same on every retry; webhook-timestamp;
 * webhook-signature v1), and records every attempt. 2xx: delivered. 410: the receiver is gone,
 * never again. Anything else (a status, a timeout, a refused address aside) is retried on the
 * schedule, or after Retry-After when that is later, until the schedule runs out.
 */
export function createWebhookDeliverer(o: WebhookDelivererOptions): WebhookDeliverer {
  const workerId = o.workerId ?? `${hostname()}:${process.pid}:webhooks:${randomInt(1e9).toString(36)}`;
  const signer = new Webhook(o.secret);
  const limit = pLimit(o.concurrency);
  // Long enough for a delivery that times out, and its record.
  const leaseMs = o.timeoutMs * 2 + 5_000;
  let running = false;
  let loop: Promise<void> | undefined;
  let wakeUp: (() => void) | undefined;
  const inFlight = new Set<Promise<void>>();

  async function attempt(event: ClaimedWebhookEvent): Promise<void> {
    const body = JSON.stringify(event.payload);
    const at = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'sceneworks-webhooks',
      'webhook-id': event.id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signer.sign(event.id, at, body),
    };
    const started = performance.now();
    let outcome: AttemptOutcome;
    try {
      const res = await o.fetch(event.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(o.timeoutMs) });
      await res.body?.cancel().catch(() => {});
      if (res.status >= 200 && res.status < 300) outcome = { kind: 'delivered', responseStatus: res.status };
      else if (res.status === 410) outcome = { kind: 'gone', responseStatus: res.status };
      else outcome = failed(event, res.status, `HTTP ${res.status}`, retryAfterMs(res.headers));
    } catch (err) {
      const refused = refusalIn(err);
      if (refused) outcome = { kind: 'failed', responseStatus: null, error: refused.message, retryInMs: null };
      else if ((err as Error).name === 'TimeoutError') outcome = failed(event, null, `no answer within ${o.timeoutMs} ms`, undefined);
      else outcome = failed(event, null, `network error: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, undefined);
    }
    const recorded = await recordWebhookAttempt(o.sql, workerId, event, outcome, performance.now() - started).catch((err: unknown) => {
      // The lease runs out and the event is sent again: at least once.
      o.log.warn({ err, eventId: event.id }, 'could not record a webhook attempt');
      return false;
    });
    if (recorded) o.metrics?.webhookDeliveries.inc({ outcome: outcome.kind === 'failed' && outcome.retryInMs !== null ? 'retrying' : outcome.kind });
    o.log.info({ eventId: event.id, type: event.type, attempt: event.attempts, outcome: outcome.kind, status: outcome.responseStatus }, 'webhook attempt');
  }

  function failed(event: ClaimedWebhookEvent, status: number | null, error: string, retryAfter: number | undefined): AttemptOutcome {
    const next = o.scheduleMs[event.attempts - 1];
    return { kind: 'failed', responseStatus: status, error, retryInMs: next === undefined ? null : Math.max(next, retryAfter ?? 0) };
  }

  async function run() {
    while (running) {
      let claimed: ClaimedWebhookEvent[] = [];
      const free = o.concurrency - inFlight.size;
      if (free > 0) {
        try {
          claimed = await claimWebhookEvents(o.sql, workerId, free, leaseMs);
        } catch (err) {
          o.log.warn({ err }, 'could not claim webhook events');
        }
      }
      for (const event of claimed) {
        const p = limit(() => attempt(event)).finally(() => {
          inFlight.delete(p);
          wakeUp?.();
        });
        inFlight.add(p);
      }
      if (claimed.length > 0 && claimed.length === free) continue;
      await new Promise<void>((resolve) => {
        wakeUp = resolve;
        void sleep(o.pollMs).then(resolve);
      });
      wakeUp = undefined;
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    wake: () => wakeUp?.(),
    async stop() {
      running = false;
      wakeUp?.();
      await loop;
      await Promise.allSettled([...inFlight]);
    },
  };
}
