import { toIso } from '../db/database.ts';
import { listProjectSummaries } from '../db/projects.ts';
import type { Scope } from '../db/scope.ts';
import { AppError } from '../errors.ts';
import { projectStatus, type ProjectStatus } from './progress.ts';
import type { ProjectsContext } from './projects.ts';

export interface ProjectSummary {
  id: string;
  title: string | null;
  status: ProjectStatus;
  progress: { total: number; queued: number; running: number; succeeded: number; failed: number };
  createdAt: string;
  updatedAt: string;
}

/** The owner's projects, newest first; the cursor is opaque to clients. */
export async function listProjects(
  ctx: Pick<ProjectsContext, 'sql'>,
  scope: Scope,
  q: { limit: number; cursor?: string | undefined; status?: ProjectStatus | undefined },
): Promise<{ items: ProjectSummary[]; nextCursor: string | null }> {
  const after = q.cursor ? decodeCursor(q.cursor) : null;
  const rows = await listProjectSummaries(ctx.sql, { scope, limit: q.limit + 1, after, status: q.status ?? null });
  const page = rows.slice(0, q.limit);
  const items = page.map((r): ProjectSummary => {
    const progress = { total: r.total, queued: r.queued, running: r.running, succeeded: r.succeeded, failed: r.failed };
    return {
      id: r.id,
      title: r.title,
      status: projectStatus(progress),
      progress,
      createdAt: toIso(r.createdAt),
      updatedAt: toIso(r.updatedAt),
    };
  });
  const last = page[page.length - 1];
  const nextCursor = rows.length > q.limit && last ? encodeCursor(last.createdAt, last.id) : null;
  return { items, nextCursor };
}

/** The cursor keeps PostgreSQL's microseconds: projects created in the same millisecond are never skipped. */
function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString('base64url');
}

const PG_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt !== 'string' || !PG_TIMESTAMP.test(createdAt) || !isRealInstant(createdAt) || typeof id !== 'string' || !UUID.test(id)) {
      throw new Error('bad cursor');
    }
    return { createdAt, id };
  } catch {
    throw new AppError('VALIDATION_FAILED', 'invalid cursor', [{ path: ['cursor'], message: 'not a cursor returned by this API' }]);
  }
}

/** '2026-02-30 25:61:00+00' has the shape of a timestamp but names no instant: PostgreSQL would refuse it. */
function isRealInstant(pg: string): boolean {
  const iso = `${pg.slice(0, 10)}T${pg.slice(11, 19)}Z`;
  const date = new Date(iso);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 19) === iso.slice(0, 19);
}
