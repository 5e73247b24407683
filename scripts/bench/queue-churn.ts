/**
 * Issue 12, item 1: what processed slots leave behind in the queue's indexes.
 *
 * A table of `base` finished slots plus a backlog of queued ones, VACUUM ANALYZEd: the three
 * queue reads are timed (the claim's candidate scan, the queue position every POST, generate
 * and regenerate reads, and the recovery scan). Then `processed` slots go through the queue
 * the way the runner moves them (queued, claimed by claimQueuedSlots, committed), in waves,
 * with autovacuum running as configured and slot_queue vacuumed every 5 s as the runner does
 * (the queue's reads read slot_queue: migration 1765584000000), and the same reads are timed
 * again. The ratio
 * after / after-vacuum is the figure; run with the table's autovacuum settings as the
 * migrations leave them, and again with PostgreSQL's defaults for comparison.
 */
import { claimQueuedSlots, vacuumQueue } from '../../src/db/queue.ts';
import { connect, type Pool } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createLogger } from '../../src/log.ts';
import { judge, percentile, type Measurement } from './report.ts';
import { createBenchDatabase, type BenchPostgres } from './service.ts';

const BACKLOG = 20_000;
const WAVE = 500;
const SAMPLES = 200;

/** The queue's reads, as the service issues them (src/db/queue.ts, src/db/images.ts); the claim's locks last its statement. */
const READS = {
  claim: (sql: Pool) => sql`
    SELECT g.id FROM slot_queue q
    CROSS JOIN LATERAL (SELECT g.id FROM generated_images g WHERE g.id = q.id AND g.status = 'queued' FOR UPDATE SKIP LOCKED) g
    WHERE q.status = 'queued' ORDER BY q.queue_rank, q.queued_at, q.id LIMIT 50`,
  'queue position': (sql: Pool) => sql`SELECT coalesce((SELECT min(queue_rank) FROM slot_queue WHERE status = 'queued'), 0) AS r`,
  recovery: (sql: Pool) => sql`SELECT id FROM slot_queue WHERE status = 'running' AND locked_until < now()`,
} as const;

/** The runner vacuums slot_queue this often (src/generation/runner.ts); the churn here does the same. */
const QUEUE_VACUUM_MS = 5_000;
type ReadName = keyof typeof READS;

export async function measureQueueChurn(
  pg: BenchPostgres,
  o: { base: number; processed: number; defaults: boolean },
  progress: (message: string) => void,
): Promise<Measurement[]> {
  const database = await createBenchDatabase(pg, `queue_${o.defaults ? 'defaults' : 'tuned'}`);
  const url = database.url;
  await migrate(url, createLogger('warn'));
  const sql = connect(url, 4);
  const label = o.defaults ? 'PostgreSQL default autovacuum' : 'the migrations\' autovacuum settings';
  try {
    if (o.defaults) await sql`ALTER TABLE generated_images RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold, autovacuum_analyze_scale_factor, autovacuum_analyze_threshold, autovacuum_vacuum_cost_delay)`;
    const [options] = await sql<{ reloptions: string[] | null }[]>`SELECT reloptions FROM pg_class WHERE relname = 'generated_images'`;
    progress(`queue (${label}): fill ${o.base.toLocaleString('en-US')} finished slots and ${BACKLOG.toLocaleString('en-US')} queued`);
    await fill(sql, o.base);
    await sql`VACUUM ANALYZE generated_images`;
    const before = await timeReads(sql);

    progress(`queue (${label}): ${o.processed.toLocaleString('en-US')} slots through the queue, in waves of ${WAVE}`);
    const [stats0] = await vacuumStats(sql);
    const started = performance.now();
    let rank = o.base + BACKLOG;
    let vacuumed = performance.now();
    for (let done = 0; done < o.processed; done += WAVE) {
      if (performance.now() - vacuumed >= QUEUE_VACUUM_MS) {
        await vacuumQueue(sql);
        vacuumed = performance.now();
      }
      await enqueue(sql, WAVE, rank);
      rank += WAVE;
      const claimed = await claimQueuedSlots(sql, 'bench', WAVE, 60_000);
      await sql`
        UPDATE generated_images SET status = 'succeeded', locked_by = NULL, locked_until = NULL, finished_at = now(), updated_at = now(),
               storage_key = 'k/' || id, mime_type = 'image/png', bytes = 100
        WHERE id = ANY(${claimed.map((c) => c.id)}::uuid[])`;
      if ((done / WAVE) % 100 === 0) progress(`queue (${label}): ${done.toLocaleString('en-US')} processed`);
    }
    const seconds = (performance.now() - started) / 1000;
    const [stats1] = await vacuumStats(sql);
    const after = await timeReads(sql);
    const details = {
      table: `${o.base.toLocaleString('en-US')} finished slots, a backlog of ${BACKLOG.toLocaleString('en-US')} queued`,
      churn: `${o.processed.toLocaleString('en-US')} slots queued, claimed and committed in ${seconds.toFixed(0)} s, waves of ${WAVE}`,
      autovacuum: `${label} (${options?.reloptions?.join(', ') ?? 'none set'}); ${stats1!.autovacuums - stats0!.autovacuums} autovacuum runs during the churn, ${stats1!.dead.toLocaleString('en-US')} dead tuples left`,
      samples: `${SAMPLES} per read, p50`,
    };
    return (Object.keys(READS) as ReadName[]).map((read, i) =>
      judge({
        name: `queue ${read} after ${o.processed.toLocaleString('en-US')} processed slots (${o.defaults ? 'default autovacuum' : 'tuned autovacuum'})`,
        unit: 'ms',
        measured: after[read],
        baseline: { label: 'the same read right after VACUUM', value: before[read] },
        ratio: before[read] / after[read],
        // Goal: at most 1.5 times the after-vacuum cost.
        target: { of: 'ratio', min: 1 / 1.5 },
        details: i === 0 ? details : {},
      }),
    );
  } finally {
    await sql.end({ timeout: 5 });
    await database.drop().catch(() => {});
  }
}

async function fill(sql: Pool, base: number): Promise<void> {
  const projects = Math.ceil((base + BACKLOG) / 1000);
  await sql`
    INSERT INTO content_creation_requests (id, title, settings, generated_output)
    SELECT md5('queue-project-' || k)::uuid, 'bench', '{"aspectRatio": "1:1"}'::jsonb, '{"scenes": []}'::jsonb
    FROM generate_series(0, ${projects - 1}::int) k`;
  for (let from = 0; from < base; from += 100_000) {
    const to = Math.min(base, from + 100_000);
    await sql`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, prompt, queued_at, queue_rank,
                                    started_at, finished_at, storage_key, mime_type, bytes)
      SELECT md5('queue-project-' || (i / 1000))::uuid, (i % 1000) / 4 + 1, i % 4, 'succeeded', 'a prompt', now(), i, now(), now(),
             'k/' || i, 'image/png', 100
      FROM generate_series(${from}::bigint, ${to - 1}::bigint) i`;
  }
  await enqueue(sql, BACKLOG, base);
}

/** `n` queued slots at the back of the queue, in projects of 1,000 slots. */
async function enqueue(sql: Pool, n: number, rank: number): Promise<void> {
  await sql`
    INSERT INTO content_creation_requests (id, title, settings, generated_output)
    SELECT DISTINCT md5('queue-project-' || (i / 1000))::uuid, 'bench', '{"aspectRatio": "1:1"}'::jsonb, '{"scenes": []}'::jsonb
    FROM generate_series(${rank}::bigint, ${rank + n - 1}::bigint) i
    ON CONFLICT (id) DO NOTHING`;
  await sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, prompt, queued_at, queue_rank)
    SELECT md5('queue-project-' || (i / 1000))::uuid, (i % 1000) / 4 + 1, i % 4, 'queued', 'a prompt', clock_timestamp(), i
    FROM generate_series(${rank}::bigint, ${rank + n - 1}::bigint) i`;
}

async function timeReads(sql: Pool): Promise<Record<ReadName, number>> {
  const out = {} as Record<ReadName, number>;
  for (const read of Object.keys(READS) as ReadName[]) {
    const times: number[] = [];
    for (let i = 0; i < SAMPLES + 5; i++) {
      const started = performance.now();
      await READS[read](sql);
      if (i >= 5) times.push(performance.now() - started);
    }
    out[read] = percentile(times, 0.5);
  }
  return out;
}

async function vacuumStats(sql: Pool) {
  return sql<{ autovacuums: number; dead: number }[]>`
    SELECT autovacuum_count::int AS autovacuums, n_dead_tup::int AS dead FROM pg_stat_user_tables WHERE relname = 'generated_images'`;
}
