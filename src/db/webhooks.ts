import type { Pool, Sql } from './database.ts';
import { ownedBy, type Scope } from './scope.ts';

export const WEBHOOK_EVENTS = ['image.succeeded', 'image.failed', 'project.finished', 'project.deleted'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookTarget {
  url: string;
  events: WebhookEventType[];
}

/** An event claimed for delivery: (id, attempts) is its fence. */
export interface ClaimedWebhookEvent {
  id: string;
  projectId: string;
  type: WebhookEventType;
  url: string;
  payload: unknown;
  attempts: number;
}

/**
 * Claims due events (pending, their time come, nobody's lease alive) for `leaseMs`, oldest
 * first, skipping those another deliverer holds: replicas share the work and never send one
 * event at the same time. A deliverer that dies leaves its lease to expire: the event is sent
 * again (same id), never lost.
 */
export async function claimWebhookEvents(sql: Sql, workerId: string, limit: number, leaseMs: number): Promise<ClaimedWebhookEvent[]> {
  return sql<ClaimedWebhookEvent[]>`
    UPDATE webhook_events e
    SET locked_by = ${workerId}, locked_until = now() + make_interval(secs => ${leaseMs / 1000}), attempts = e.attempts + 1
    WHERE e.id IN (
      SELECT id FROM webhook_events
      WHERE status = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
      ORDER BY next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING e.id, e.project_id, e.type, e.url, e.payload, e.attempts`;
}

export type AttemptOutcome =
  | { kind: 'delivered'; responseStatus: number }
  | { kind: 'gone'; responseStatus: number }
  /** Try again after `retryInMs`, or stop (status failed) when it is null. */
  | { kind: 'failed'; responseStatus: number | null; error: string; retryInMs: number | null };

/** Logs an attempt and moves the event on, if this deliverer still holds it (fenced by lease and attempt). */
export async function recordWebhookAttempt(sql: Pool, workerId: string, event: ClaimedWebhookEvent, outcome: AttemptOutcome, durationMs: number): Promise<boolean> {
  const status = outcome.kind === 'failed' ? (outcome.retryInMs === null ? 'failed' : 'pending') : outcome.kind;
  const retryInS = outcome.kind === 'failed' && outcome.retryInMs !== null ? outcome.retryInMs / 1000 : 0;
  const attemptStatus = outcome.kind === 'failed' ? 'failed' : outcome.kind;
  const error = outcome.kind === 'failed' ? outcome.error : null;
  return sql.begin(async (tx) => {
    const updated = await tx`
      UPDATE webhook_events SET status = ${status}, locked_by = NULL, locked_until = NULL,
             next_attempt_at = now() + make_interval(secs => ${retryInS})
      WHERE id = ${event.id} AND locked_by = ${workerId} AND attempts = ${event.attempts}`;
    if (updated.count !== 1) return false;
    await tx`
      INSERT INTO webhook_deliveries (event_id, project_id, event, attempt, status, response_status, duration_ms, error)
      VALUES (${event.id}, ${event.projectId}, ${event.type}, ${event.attempts}, ${attemptStatus}, ${outcome.responseStatus}, ${Math.round(durationMs)}, ${error})`;
    return true;
  });
}

/** project.deleted, in the delete's transaction, before the project row goes. */
export async function insertProjectDeletedEvent(sql: Sql, projectId: string): Promise<void> {
  await sql`
    INSERT INTO webhook_events (id, project_id, owner_id, type, url, payload)
    SELECT gen_random_uuid(), p.id, p.user_id, 'project.deleted', p.webhook->>'url',
           jsonb_build_object('type', 'project.deleted', 'timestamp', sceneworks_webhook_time(), 'data', jsonb_build_object('projectId', p.id))
    FROM content_creation_requests p
    WHERE p.id = ${projectId} AND p.webhook IS NOT NULL AND p.webhook->'events' ? 'project.deleted'`;
}

export interface WebhookDelivery {
  id: string;
  event: string;
  eventId: string;
  attempt: number;
  status: string;
  responseStatus: number | null;
  durationMs: number | null;
  error: string | null;
  createdAt: string;
}

/** Every attempt for a project in scope, oldest first; undefined when the project is not in scope. */
export async function listWebhookDeliveries(sql: Sql, scope: Scope, projectId: string): Promise<WebhookDelivery[] | undefined> {
  const [project] = await sql`SELECT id FROM content_creation_requests WHERE id = ${projectId} AND ${ownedBy(sql, scope)}`;
  if (!project) return undefined;
  return sql<WebhookDelivery[]>`
    SELECT id::text, event, event_id, attempt, status, response_status, duration_ms, error, created_at
    FROM webhook_deliveries WHERE project_id = ${projectId} ORDER BY id`;
}
