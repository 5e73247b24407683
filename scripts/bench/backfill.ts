import { runBackfill } from '../../src/backfill/run.ts';
import { connect, type Pool } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';
import { createLogger } from '../../src/log.ts';
import { judge, type Measurement } from './report.ts';
import { createBenchDatabase, type BenchPostgres } from './service.ts';

const PROJECTS = 62_500;
const SCENES = 8;
const IMAGES = 2;
const URLS = PROJECTS * SCENES * IMAGES; // 1,000,000
const SAMPLE_PROJECTS = 1_250; // 20,000 URLs for the row-at-a-time baseline

/**
 * 4. Backfill of 1,000,000 legacy image URLs (62,500 projects x 8 scenes x 2 images), in the
 * same run as (a) a bare INSERT ... SELECT of the same URLs with no checks: the database's
 * own ceiling here, and (b) a row-at-a-time loop (one INSERT per image) on a sample.
 */
export async function measureBackfill(pg: BenchPostgres): Promise<Measurement[]> {
  const database = await createBenchDatabase(pg, 'backfill');
  const url = database.url;
  await migrate(url, createLogger('warn'));
  const sql = connect(url, 4);
  try {
    await writeLegacyProjects(sql);

    // (a) The ceiling: the same URLs straight from the JSON into the table, no checks at all.
    let started = performance.now();
    await sql`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
      SELECT p.id, s.ord::int, u.ord::int - 1, 'succeeded', u.url #>> '{}'
      FROM content_creation_requests p,
           jsonb_array_elements(p.generated_output -> 'scenes') WITH ORDINALITY AS s(scene, ord),
           jsonb_array_elements(s.scene -> 'imageUrls') WITH ORDINALITY AS u(url, ord)`;
    const ceilingSeconds = (performance.now() - started) / 1000;
    await sql`TRUNCATE generated_images`;
    await sql`VACUUM ANALYZE generated_images`;

    // The backfill itself, as `npm run backfill` runs it (default batch size).
    started = performance.now();
    const summary = await runBackfill(sql, { batchSize: 500, dryRun: false, pruneLegacy: false });
    const backfillSeconds = (performance.now() - started) / 1000;
    if (summary.rowsInserted !== URLS) throw new Error(`backfill inserted ${summary.rowsInserted} rows, expected ${URLS}`);

    // (b) The baseline: one INSERT per image, on a sample of projects.
    await sql`TRUNCATE generated_images`;
    const sample = await sql<{ id: string; generatedOutput: any }[]>`
      SELECT id, generated_output FROM content_creation_requests ORDER BY id LIMIT ${SAMPLE_PROJECTS}`;
    let sampleRows = 0;
    started = performance.now();
    for (const p of sample) {
      for (const [s, scene] of p.generatedOutput.scenes.entries()) {
        for (const [i, url] of scene.imageUrls.entries()) {
          await sql`
            INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
            VALUES (${p.id}, ${s + 1}, ${i}, 'succeeded', ${url}) ON CONFLICT DO NOTHING`;
          sampleRows += 1;
        }
      }
    }
    const baselineSeconds = (performance.now() - started) / 1000;

    const rate = URLS / backfillSeconds;
    const ceiling = URLS / ceilingSeconds;
    const baseline = sampleRows / baselineSeconds;
    const details = {
      'legacy URLs': `${URLS.toLocaleString('en-US')} (${PROJECTS.toLocaleString('en-US')} projects x ${SCENES} scenes x ${IMAGES} images)`,
      'backfill time': `${backfillSeconds.toFixed(1)} s, ${summary.batches} batches of 500 projects`,
      'bare INSERT ... SELECT time': `${ceilingSeconds.toFixed(1)} s`,
      'row-at-a-time sample': `${sampleRows.toLocaleString('en-US')} rows in ${baselineSeconds.toFixed(1)} s`,
    };
    return [
      judge({ name: 'backfill vs bare INSERT ... SELECT', unit: 'rows/s', measured: rate, baseline: { label: 'ceiling: bare INSERT ... SELECT, no checks', value: ceiling }, ratio: rate / ceiling, target: { of: 'ratio', min: 0.8 }, details }),
      judge({ name: 'backfill vs row-at-a-time', unit: 'rows/s', measured: rate, baseline: { label: 'baseline: one INSERT per image (sample)', value: baseline }, ratio: rate / baseline, target: { of: 'ratio', min: 20 }, details: {} }),
    ];
  } finally {
    await sql.end({ timeout: 5 });
    await database.drop();
  }
}

/** 62,500 legacy projects, written by the database itself in a few statements. */
async function writeLegacyProjects(sql: Pool) {
  await sql`
    INSERT INTO content_creation_requests (id, user_id, title, generated_output)
    SELECT gen_random_uuid(), ${LOCAL_OWNER_ID}, 'legacy ' || p,
      jsonb_build_object('scenes', (
        SELECT jsonb_agg(jsonb_build_object(
          'prompt', 'scene ' || s || ' of project ' || p,
          'imageUrls', (SELECT jsonb_agg('https://replicate.delivery/pbxt/' || md5(p || '-' || s || '-' || i) || '/out-' || i || '.png') FROM generate_series(0, ${IMAGES - 1}) i)))
        FROM generate_series(1, ${SCENES}) s))
    FROM generate_series(1, ${PROJECTS}) p`;
  await sql`VACUUM ANALYZE content_creation_requests`;
}
