import { afterAll, beforeAll, expect, it } from 'vitest';
import postgres from 'postgres';
import { listProjectSummaries } from '../../src/db/projects.ts';
import type { Scope } from '../../src/db/scope.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * GET /projects reads a page, not the owner's projects: whatever the number of projects and
 * whichever status filter, the rows PostgreSQL reads from content_creation_requests stay
 * within a few pages' worth. Checked on the plan PostgreSQL actually ran (EXPLAIN ANALYZE of
 * the very statement listProjectSummaries sends), not on a timing.
 */
let db: TestDatabase;
const OWNER = '00000000-0000-4000-8000-0000000000cc';
const PROJECTS = 5_000;
beforeAll(async () => {
  db = await createTestDatabase();
  // One owner with every project (the case where the planner preferred reading them all and
  // sorting), 1% failed, a few unowned legacy ones.
  await db.sql`
    INSERT INTO content_creation_requests (id, user_id, title, settings, generated_output, created_at, updated_at, slots_total, slots_succeeded, slots_failed)
    SELECT md5('plan-' || k)::uuid, CASE WHEN k % 500 = 0 THEN NULL ELSE ${OWNER}::uuid END, 'p' || k, '{}'::jsonb, '{"scenes": []}'::jsonb,
           now() - make_interval(secs => ${PROJECTS} - k), now(), 4, CASE WHEN k % 100 = 0 THEN 0 ELSE 4 END, CASE WHEN k % 100 = 0 THEN 4 ELSE 0 END
    FROM generate_series(1, ${PROJECTS}::int) k`;
  await db.sql`ANALYZE content_creation_requests`;
});
afterAll(async () => {
  await db.drop();
});

type PlanNode = { 'Relation Name'?: string; 'Actual Rows'?: number; 'Actual Loops'?: number; Plans?: PlanNode[] };
function rowsRead(node: PlanNode): number {
  const own = node['Relation Name'] === 'content_creation_requests' ? (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1) : 0;
  return own + (node.Plans ?? []).reduce((n, child) => n + rowsRead(child), 0);
}

/** The rows the listing's statement read, from EXPLAIN ANALYZE of exactly what it sent. */
async function rowsReadBy(scope: Scope, status: string | null): Promise<{ rows: number; page: number }> {
  const sent: { query: string; parameters: unknown[] }[] = [];
  const capture = postgres(db.url, { max: 1, onnotice: () => {}, transform: { column: { from: postgres.toCamel, to: postgres.fromCamel } }, debug: (_c, query, parameters) => void sent.push({ query, parameters }) });
  try {
    const page = await listProjectSummaries(capture, { scope, limit: 21, after: null, status });
    const statement = sent.find((s) => s.query.includes('content_creation_requests'))!;
    const [row] = await db.sql.unsafe(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement.query}`, statement.parameters as never[]);
    const plan = (row as Record<string, [{ Plan: PlanNode }]>)['QUERY PLAN']![0].Plan;
    return { rows: rowsRead(plan), page: page.length };
  } finally {
    await capture.end();
  }
}

it.each([
  ['an owner with its unowned projects, unfiltered', { ownerId: OWNER, unowned: true }, null],
  ['an owner with its unowned projects, a status that matches nothing', { ownerId: OWNER, unowned: true }, 'running'],
  ['an owner with its unowned projects, a rare status', { ownerId: OWNER, unowned: true }, 'failed'],
  ['an owner alone, unfiltered', { ownerId: OWNER, unowned: false }, null],
  ['an operator (everyone), unfiltered', { ownerId: null, unowned: true }, null],
  ['an operator, a rare status', { ownerId: null, unowned: true }, 'failed'],
] as const)('a page of projects reads a page, not all %s', async (_name, scope, status) => {
  const { rows, page } = await rowsReadBy(scope, status);
  expect(page).toBe(status === 'running' ? 0 : 21);
  expect(rows).toBeLessThanOrEqual(2 * 21);
});
