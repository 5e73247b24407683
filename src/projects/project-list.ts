import { toIso } from '../db/database.ts';
import { decodeCursor, encodeCursor } from '../db/keyset-cursor.ts';
import { listProjectSummaries } from '../db/projects.ts';
import type { Scope } from '../db/scope.ts';
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
  const position = q.cursor ? decodeCursor(q.cursor) : null;
  const after = position && { createdAt: position.at, id: position.id };
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
