import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { connect, type Pool } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { LOCAL_OWNER_ID } from '../../src/deps.ts';
import { createLogger } from '../../src/log.ts';
import { judge, type Measurement } from './report.ts';
import { createBenchDatabase, type BenchPostgres } from './service.ts';

const SCENES = 100;
const IMAGES = 10;
const SAVES = SCENES * IMAGES; // 1,000
const POOL = 10;

interface Save {
  /** 0-based position in generated_output.scenes (scene_index is this + 1, as the backfill numbers them). */
  scene: number;
  image: number;
  url: string;
}

interface LegacyOutput {
  scenes: { prompt: string; imageUrls: (string | null)[] }[];
}

/**
 * 5. The legacy race, side by side with sceneworks, same run, same database server: 1,000
 * image saves (100 scenes x 10 images) into ONE project, all started at once over a pool of
 * 10 connections, once per design.
 *
 * - Legacy: each save SELECTs the project's whole generated_output, sets
 *   scenes[s].imageUrls[i] in JS and UPDATEs the whole JSON back: two statements, no
 *   transaction, no lock, as the legacy app did. Concurrent saves overwrite each other's URLs.
 * - sceneworks: each save is one upsert of its own row on the slot key.
 *
 * Images kept = URLs present at the end (legacy: in the final JSON; sceneworks: rows holding
 * the right URL, succeeded).
 */
export async function measureRace(pg: BenchPostgres): Promise<Measurement[]> {
  const database = await createBenchDatabase(pg, 'race');
  const url = database.url;
  let sql: Pool | undefined;
  try {
    await migrate(url, createLogger('warn'));
    sql = connect(url, POOL);
    const projectId = await writeProject(sql);
    const saves = plannedSaves();
    // Open all 10 connections before the clock starts, so neither design pays for them.
    await Promise.all(Array.from({ length: POOL }, () => sql!`SELECT pg_sleep(0.02)`));

    const legacy = await timed(() => Promise.all(saves.map((s) => legacySave(sql!, projectId, s))));
    const legacyKept = await legacyKeptCount(sql, projectId, saves);

    const rows = await timed(() => Promise.all(saves.map((s) => upsertSave(sql!, projectId, s))));
    const rowsKept = await rowsKeptCount(sql, projectId, saves);

    const legacyRate = SAVES / legacy.seconds;
    const rowsRate = SAVES / rows.seconds;
    const details = {
      saves: `${SAVES.toLocaleString('en-US')} into one project (${SCENES} scenes x ${IMAGES} images), all started at once, pool of ${POOL} connections per design`,
      'legacy read-modify-write': `${legacyKept.toLocaleString('en-US')} kept, ${(SAVES - legacyKept).toLocaleString('en-US')} lost, ${fmtRate(legacyRate)} saves/s (${ms(legacy.seconds)})`,
      'sceneworks row upserts': `${rowsKept.toLocaleString('en-US')} kept, ${(SAVES - rowsKept).toLocaleString('en-US')} lost, ${fmtRate(rowsRate)} saves/s (${ms(rows.seconds)})`,
      'legacy save': 'SELECT generated_output, set scenes[s].imageUrls[i] in JS, UPDATE generated_output = whole JSON; no transaction, no lock',
      'sceneworks save': `one INSERT ... ON CONFLICT (content_creation_request_id, scene_index, image_index) DO UPDATE per image, onto ${SAVES.toLocaleString('en-US')} queued slots (as the service queues them first)`,
    };
    return [
      judge({
        name: 'race: images kept of 1,000 concurrent saves, one project (sceneworks row upserts)',
        unit: 'images',
        measured: rowsKept,
        baseline: { label: 'legacy JSON read-modify-write kept', value: legacyKept },
        // The last legacy write always carries its own URL, so legacyKept >= 1.
        ratio: rowsKept / Math.max(legacyKept, 1),
        target: { of: 'measured', min: SAVES },
        details,
      }),
      judge({
        name: 'race: saves/s, same 1,000 saves (sceneworks row upserts)',
        unit: 'saves/s',
        measured: rowsRate,
        baseline: { label: 'legacy JSON read-modify-write', value: legacyRate },
        ratio: rowsRate / legacyRate,
        target: { of: 'ratio', min: 1 },
        details: {
          'legacy images lost': SAVES - legacyKept,
          'sceneworks images lost': SAVES - rowsKept,
          'legacy saves/s': Math.round(legacyRate),
          'sceneworks saves/s': Math.round(rowsRate),
        },
      }),
    ];
  } finally {
    await sql?.end({ timeout: 5 });
    await database.drop();
  }
}

/** One project: 100 scenes of 10 empty image places (nulls), and the same 1,000 slots as queued rows. */
async function writeProject(sql: Pool): Promise<string> {
  const output: LegacyOutput = {
    scenes: Array.from({ length: SCENES }, (_, s) => ({ prompt: `scene ${s + 1}`, imageUrls: Array<string | null>(IMAGES).fill(null) })),
  };
  const [project] = await sql<{ id: string }[]>`
    INSERT INTO content_creation_requests (user_id, title, generated_output)
    VALUES (${LOCAL_OWNER_ID}, 'legacy race', ${sql.json(output as unknown as postgres.JSONValue)})
    RETURNING id`;
  if (!project) throw new Error('race: the project was not inserted');
  await sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, prompt, queued_at)
    SELECT ${project.id}, s, i, 'queued', 'scene ' || s, clock_timestamp()
    FROM generate_series(1, ${SCENES}) s, generate_series(0, ${IMAGES - 1}) i`;
  await sql`VACUUM ANALYZE content_creation_requests, generated_images`;
  return project.id;
}

/** URLs as long as the legacy app's (Replicate delivery URLs), one distinct URL per save. */
function plannedSaves(): Save[] {
  const saves: Save[] = [];
  for (let scene = 0; scene < SCENES; scene++) {
    for (let image = 0; image < IMAGES; image++) {
      const hash = createHash('md5').update(`race-${scene}-${image}`).digest('hex');
      saves.push({ scene, image, url: `https://replicate.delivery/pbxt/${hash}/out-${image}.png` });
    }
  }
  return saves;
}

/** The legacy save: read the whole JSON, change one URL, write the whole JSON back. */
async function legacySave(sql: Pool, projectId: string, save: Save): Promise<void> {
  const [row] = await sql<{ generatedOutput: LegacyOutput }[]>`
    SELECT generated_output FROM content_creation_requests WHERE id = ${projectId}`;
  if (!row) throw new Error('race: the project disappeared');
  const output = row.generatedOutput;
  const scene = output.scenes[save.scene];
  if (!scene) throw new Error(`race: scene ${save.scene} missing from the JSON`);
  scene.imageUrls[save.image] = save.url;
  await sql`
    UPDATE content_creation_requests SET generated_output = ${sql.json(output as unknown as postgres.JSONValue)}
    WHERE id = ${projectId}`;
}

/** The sceneworks save: one upsert of the image's own row on the slot key. */
async function upsertSave(sql: Pool, projectId: string, save: Save): Promise<void> {
  await sql`
    INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, image_url)
    VALUES (${projectId}, ${save.scene + 1}, ${save.image}, 'succeeded', ${save.url})
    ON CONFLICT (content_creation_request_id, scene_index, image_index)
    DO UPDATE SET image_url = EXCLUDED.image_url, status = 'succeeded', updated_at = now()`;
}

async function legacyKeptCount(sql: Pool, projectId: string, saves: readonly Save[]): Promise<number> {
  const [row] = await sql<{ generatedOutput: LegacyOutput }[]>`
    SELECT generated_output FROM content_creation_requests WHERE id = ${projectId}`;
  if (!row) throw new Error('race: the project disappeared');
  return saves.filter((s) => row.generatedOutput.scenes[s.scene]?.imageUrls[s.image] === s.url).length;
}

async function rowsKeptCount(sql: Pool, projectId: string, saves: readonly Save[]): Promise<number> {
  const [row] = await sql<{ kept: number }[]>`
    SELECT count(*)::int AS kept
    FROM generated_images g
    JOIN unnest(${saves.map((s) => s.scene + 1)}::int[], ${saves.map((s) => s.image)}::int[], ${saves.map((s) => s.url)}::text[])
      AS w(scene_index, image_index, url)
      ON g.scene_index = w.scene_index AND g.image_index = w.image_index AND g.image_url = w.url
    WHERE g.content_creation_request_id = ${projectId} AND g.status = 'succeeded'`;
  return row?.kept ?? 0;
}

async function timed(run: () => Promise<unknown>): Promise<{ seconds: number }> {
  const started = performance.now();
  await run();
  return { seconds: (performance.now() - started) / 1000 };
}

const fmtRate = (x: number) => Math.round(x).toLocaleString('en-US');
const ms = (seconds: number) => `${Math.round(seconds * 1000).toLocaleString('en-US')} ms`;
