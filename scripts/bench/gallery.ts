import postgres from 'postgres';
import { connect, type Pool } from '../../src/db/database.ts';
import { listGallery, type GalleryQuery } from '../../src/db/gallery.ts';
import type { Scope } from '../../src/db/scope.ts';
import { listen } from './http.ts';
import { constantProvider, smallPng } from './provider.ts';
import { judge, percentile, type Measurement } from './report.ts';
import { startService, type BenchPostgres } from './service.ts';

/**
 * 6. GET /images on a table of 10,000,000 images, 1,000,000 of them one owner's (the service's
 * single owner, OWNER_ID; 1% of the table is unowned legacy images, which that owner sees
 * too: every page is the two-scan merge). p50 and p99 of a first page, a page deep in the
 * history (by cursor), a search, and filtered pages, each through the real service over HTTP
 * and, in the same run, interleaved request for request, the same query as bare SQL
 * (listGallery on a pool of its own: the statements the service runs, without HTTP, JSON
 * or URL signing).
 */

const OWNER = '00000000-0000-4000-8000-000000000001';
const SCOPE: Scope = { ownerId: OWNER, unowned: true };
/** Slots per project: 4 scenes x 2 images. */
const SLOTS = 8;

// Prompts are made of these (skewed towards the first words of each list, as real prompts
// are), plus, in 5% of prompts, one of 27,000 made-up names: words that are rare.
const ADJECTIVES = 'quiet old tiny giant red golden misty ancient neon rusty frozen wild lonely bright dark gentle stormy sleepy busy broken shiny wooden glass floating hidden colorful vintage futuristic snowy sunny cozy haunted elegant tiny majestic crumbling silver emerald crimson pale hungry curious proud tired happy grumpy playful mysterious abandoned sacred'.split(' ');
const SUBJECTS = 'lighthouse cat dog fox owl dragon robot astronaut castle village forest mountain river bridge train bicycle lantern teapot violin garden market harbor ship whale wolf bear rabbit deer horse knight wizard witch child grandmother baker fisherman musician dancer painter gardener detective pirate samurai monk queen king tiger elephant giraffe penguin octopus butterfly hummingbird tree cottage tower windmill greenhouse library cathedral skyscraper diner bakery bookshop carousel balloon kite umbrella typewriter clock'.split(' ');
const ACTIONS = 'standing sitting sleeping reading running dancing flying swimming floating glowing waiting singing painting cooking walking climbing watching hiding resting drifting'.split(' ');
const PLACES = 'on a hill|by the sea|in a forest|on a rooftop|in the rain|under the stars|in a busy street|on a frozen lake|in a desert|near a waterfall|inside a cave|at the harbor|in a wheat field|on the moon|in a snowy village|beside a campfire|in a flower meadow|on a cliff|in an old library|at a train station'.split('|');
const TIMES = 'at dawn|at dusk|at golden hour|at night|at noon|in autumn|in winter|in spring|on a summer evening|during a storm|in the fog|under a full moon'.split('|');
const STYLES = 'watercolor|oil painting|pencil sketch|photorealistic|cinematic|studio ghibli inspired|pixel art|low poly 3d|isometric illustration|charcoal drawing|ukiyo-e woodblock|art nouveau|film noir|vaporwave|claymation|comic book|impressionist|minimalist vector|gouache|35mm film photo'.split('|');
const LIGHTING = 'soft light|dramatic lighting|volumetric light|rim light|neon glow|candlelight|overcast light|backlit|warm tones|cool tones|high contrast|pastel colors'.split('|');
const REVISIONS = 'highly detailed|intricate textures|depth of field|wide angle composition|rule of thirds|muted palette|vivid saturated colors|sharp focus|gentle bokeh|symmetrical framing|atmospheric perspective|dynamic composition'.split('|');
const SYLLABLES = 'ka lo ri va ne thu mor sel dra qui zen bel cor fen gal hav ix jor lum nix oph pax ryn syl tor ul vek wyn xan yl zor'.split(' ');
const PROVIDERS: readonly [string, number, string][] = [
  ['local', 0.4, 'bench-local'],
  ['openai', 0.3, 'gpt-image-1'],
  ['stability', 0.2, 'sd3.5-large'],
  ['replicate', 0.08, 'flux-schnell'],
  ['gemini', 0.02, 'imagen-4'],
];

/** Searches a gallery search box sends, rotated: common and rare words, phrase, exclusion, or, prefixes as typed. */
const SEARCHES = ['lighthouse', 'lightho', 'golden hour', '"golden hour"', 'dragon -forest', 'cat or owl', 'watercolor harbor', 'bokeh', 'k', 'witch at ni', 'vanethu', 'astronaut on the moo'];

type Case = { name: string; path: string; query: GalleryQuery };

export async function measureGallery(pg: BenchPostgres, images: number, progress: (message: string) => void): Promise<Measurement[]> {
  const png = await smallPng();
  // The runner has nothing to do: every slot written here is finished (succeeded or failed).
  const service = await startService(pg, 'gallery', constantProvider(png, 0), { DATABASE_POOL_SIZE: '10', PROJECT_CACHE_MB: '0' });
  const bare = connect(service.deps.db.url, 4);
  let server: { url: string; close(): Promise<void> } | undefined;
  try {
    const fill = await fillGallery(service.deps.db.url, images, progress);
    server = await listen(service.app.fetch);
    const cases = await casesFor(bare);
    // 1,000 requests each way on small tables; 200 at 10 M images, where every search reads
    // more and 19 cases x 2 x 1,000 would take most of an hour (p99 is then the 2nd slowest).
    const requests = Math.max(200, Math.min(1000, Math.round(2e9 / images)));
    const out: Measurement[] = [];
    for (const c of cases) {
      progress(`gallery: ${c.name}, ${requests} requests each way`);
      const { http, sql } = await timeBoth(server.url, bare, c, requests);
      const p50 = { http: percentile(http, 0.5), sql: percentile(sql, 0.5) };
      const p99 = { http: percentile(http, 0.99), sql: percentile(sql, 0.99) };
      for (const [which, m] of [['p50', p50], ['p99', p99]] as const) {
        out.push(
          judge({
            name: `GET /images ${c.name}, ${which}`,
            unit: 'ms',
            measured: m.http,
            baseline: { label: 'bare SQL, same query', value: m.sql },
            ratio: m.sql / m.http,
            // The service may add what serving costs (HTTP, validation, JSON of 20 full records,
            // signing): at most 3 times the query's own time at the median, 4 at p99.
            target: { of: 'ratio', min: which === 'p50' ? 1 / 3 : 1 / 4 },
            details: which === 'p50' ? { request: c.path, requests: `${requests} each way, interleaved`, ...fill } : {},
          }),
        );
      }
    }
    return out;
  } finally {
    await server?.close();
    await bare.end({ timeout: 5 });
    await service.close();
  }
}

/** The pages measured, with real positions and ids taken from the filled table. */
async function casesFor(sql: Pool): Promise<Case[]> {
  const base: GalleryQuery = { limit: 21, before: null };
  // Deep: half-way through the owner's images (row 500,000 of a million), where a page by OFFSET would read every row before it.
  const [deep] = await sql<{ galleryAt: string; id: string }[]>`
    SELECT gallery_at, id FROM generated_images WHERE owner_id = ${OWNER} AND status = 'succeeded'
    ORDER BY gallery_at DESC, id DESC OFFSET (SELECT count(*) / 2 FROM generated_images WHERE owner_id = ${OWNER} AND status = 'succeeded') LIMIT 1`;
  const [project] = await sql<{ id: string }[]>`
    SELECT content_creation_request_id AS id FROM generated_images WHERE owner_id = ${OWNER} AND status = 'succeeded'
    ORDER BY gallery_at DESC, id DESC OFFSET (SELECT count(*) * 3 / 10 FROM generated_images WHERE owner_id = ${OWNER} AND status = 'succeeded') LIMIT 1`;
  const cursor = Buffer.from(JSON.stringify([deep!.galleryAt, deep!.id])).toString('base64url');
  const cases: Case[] = [
    { name: 'first page', path: '/images', query: base },
    { name: 'deep page (cursor, half-way)', path: `/images?cursor=${cursor}`, query: { ...base, before: deep! } },
    { name: 'favorites', path: '/images?favorite=true', query: { ...base, favorite: true } },
    { name: 'provider', path: '/images?provider=replicate', query: { ...base, provider: 'replicate' } },
    { name: 'project', path: `/images?projectId=${project!.id}`, query: { ...base, projectId: project!.id } },
    { name: 'favorites of one provider', path: '/images?favorite=true&provider=stability', query: { ...base, favorite: true, provider: 'stability' } },
    {
      name: 'a month',
      path: `/images?createdAfter=${monthsAgo(3)}&createdBefore=${monthsAgo(2)}`,
      query: { ...base, createdAfter: monthsAgo(3), createdBefore: monthsAgo(2) },
    },
  ];
  for (const search of SEARCHES) {
    cases.push({ name: `search "${search}"`, path: `/images?q=${encodeURIComponent(search)}`, query: { ...base, search } });
  }
  return cases;
}

function monthsAgo(n: number): string {
  return new Date(Date.now() - n * 30 * 86_400_000).toISOString();
}

/** Each request through HTTP, then the same query bare, alternately, after a warm-up of both. */
async function timeBoth(url: string, sql: Pool, c: Case, requests: number): Promise<{ http: number[]; sql: number[] }> {
  const http: number[] = [];
  const bare: number[] = [];
  const viaHttp = async () => {
    const res = await fetch(url + c.path);
    const body = (await res.json()) as { items?: unknown[] };
    if (res.status !== 200 || !Array.isArray(body.items)) throw new Error(`GET ${c.path} answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  };
  const viaSql = () => listGallery(sql, SCOPE, c.query);
  for (let i = 0; i < 5; i++) {
    await viaHttp();
    await viaSql();
  }
  for (let i = 0; i < requests; i++) {
    let started = performance.now();
    await viaHttp();
    http.push(performance.now() - started);
    started = performance.now();
    await viaSql();
    bare.push(performance.now() - started);
  }
  return { http, sql: bare };
}

/**
 * Writes `images` finished slots (8 per project) in set-based INSERT ... SELECT statements,
 * two connections at once (one per core here). The gallery's secondary indexes are dropped
 * for the load and rebuilt from their own definitions (pg_indexes) afterwards, as one would
 * bulk-load any table; triggers (change notifications, foreign-key checks) are off in the
 * loading sessions only (session_replication_role). Then VACUUM ANALYZE.
 */
export async function fillGallery(url: string, images: number, progress: (message: string) => void): Promise<Record<string, string>> {
  const projects = Math.ceil(images / SLOTS);
  const loaders = [0, 1].map(() => postgres(url, { max: 1, onnotice: () => {}, connection: { session_replication_role: 'replica', maintenance_work_mem: '512MB' } }));
  const [admin] = loaders as [postgres.Sql, postgres.Sql];
  const times: Record<string, string> = {};
  const timed = async (label: string, step: () => Promise<unknown>) => {
    const started = performance.now();
    await step();
    times[label] = `${((performance.now() - started) / 1000).toFixed(1)} s`;
    progress(`gallery: ${label} in ${times[label]}`);
  };
  try {
    const indexes = await admin<{ name: string; definition: string }[]>`
      SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i
      WHERE i.schemaname = current_schema() AND i.tablename = 'generated_images'
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)`;
    for (const index of indexes) await admin.unsafe(`DROP INDEX ${quoteIdent(index.name)}`);

    const chunk = 1_000_000;
    const ranges: [number, number][] = [];
    for (let from = 0; from < images; from += chunk) ranges.push([from, Math.min(images, from + chunk)]);
    await timed(`fill ${projects.toLocaleString('en-US')} projects`, () =>
      Promise.all([0, 1].map((half) => insertProjects(loaders[half]!, Math.floor((projects * half) / 2), Math.floor((projects * (half + 1)) / 2), projects))),
    );
    await timed(`fill ${images.toLocaleString('en-US')} images`, async () => {
      let next = 0;
      let done = 0;
      await Promise.all(
        loaders.map(async (loader) => {
          while (next < ranges.length) {
            const [from, to] = ranges[next++]!;
            await insertImages(loader, from, to, images);
            done += to - from;
            progress(`gallery: ${done.toLocaleString('en-US')} / ${images.toLocaleString('en-US')} images`);
          }
        }),
      );
    });
    // The largest first: both connections stay busy until the end.
    const queue = [...indexes].sort((a, b) => Number(b.definition.includes('gin')) - Number(a.definition.includes('gin')));
    await timed(`rebuild ${indexes.length} gallery indexes`, () =>
      Promise.all(loaders.map(async (loader) => {
        for (let index = queue.shift(); index; index = queue.shift()) await loader.unsafe(index.definition);
      })),
    );
    await timed('VACUUM ANALYZE', () => admin.unsafe('VACUUM ANALYZE generated_images, content_creation_requests'));
    const [size] = await admin<{ table: string; indexes: string }[]>`
      SELECT pg_size_pretty(pg_table_size('generated_images')) AS table, pg_size_pretty(pg_indexes_size('generated_images')) AS indexes`;
    return { ...times, 'generated_images size': `${size!.table} + ${size!.indexes} of indexes` };
  } finally {
    await Promise.all(loaders.map((l) => l.end({ timeout: 5 })));
  }
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Project k: 10% of projects are the owner's (k % 100 < 10), 1% unowned legacy ones, the
 * rest spread over 8,900 other owners. Ids are sequential (as UUIDv7 ids would be).
 */
async function insertProjects(sql: postgres.Sql, from: number, to: number, total: number) {
  await sql`
    INSERT INTO content_creation_requests (id, user_id, title, settings, created_at, updated_at)
    SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(k), 12, '0'))::uuid,
           CASE WHEN k % 100 < 10 THEN ${OWNER}::uuid
                WHEN k % 100 = 10 THEN NULL
                ELSE md5('owner-' || ((k * 7919) % 8900))::uuid END,
           'Project ' || k,
           jsonb_build_object('aspectRatio', '16:9', 'style', (${STYLES}::text[])[1 + k % ${STYLES.length}]),
           t, t
    FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS k,
         LATERAL (SELECT now() - make_interval(secs => 365 * 86400 * (1 - k::float8 / ${total}))) AS at(t)`;
}

/** Slots from..to-1: slot i is image (i % 2) of scene (i % 8) / 2 + 1 of project i / 8, made about when its project was. */
async function insertImages(sql: postgres.Sql, from: number, to: number, total: number) {
  const pick = (list: readonly string[], skew: number) => sql`(${list}::text[])[1 + floor(${list.length} * power(random(), ${skew}))::int]`;
  const providerCase = PROVIDERS.reduce(
    (acc, [name, share]) => ({ sql: sql`${acc.sql} WHEN r.provider < ${acc.at + share} THEN ${name}`, at: acc.at + share }),
    { sql: sql``, at: 0 },
  ).sql;
  const modelCase = PROVIDERS.reduce((acc, [name, , model]) => sql`${acc} WHEN ${name} THEN ${model}`, sql``);
  await sql`
    INSERT INTO generated_images (
      content_creation_request_id, scene_index, image_index, status, owner_id, prompt, image_prompt, full_prompt, revised_prompt,
      provider, model, seed, width, height, aspect_ratio, mime_type, bytes, sha256, storage_key, image_url, provider_request_id,
      attempts, error, generation, version, versions_made, favorite, queued_at, started_at, finished_at, created_at, updated_at, gallery_at)
    SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i / ${SLOTS}), 12, '0'))::uuid, (i % ${SLOTS}) / 2 + 1, i % 2,
           CASE WHEN r.failed THEN 'failed' ELSE 'succeeded' END,
           CASE WHEN (i / ${SLOTS}) % 100 < 10 THEN ${OWNER}::uuid
                WHEN (i / ${SLOTS}) % 100 = 10 THEN NULL
                ELSE md5('owner-' || (((i / ${SLOTS}) * 7919) % 8900))::uuid END,
           w.prompt, w.prompt, w.prompt || ', ' || w.style || ', ' || w.light,
           CASE WHEN w.provider = 'openai' THEN 'A ' || w.revision || ' rendering of ' || lower(w.prompt) || ', ' || w.revision2 END,
           w.provider, CASE w.provider ${modelCase} END, (i * 2654435761) % 4294967296, 1344, 768, '16:9',
           CASE WHEN r.failed THEN NULL ELSE 'image/png' END, CASE WHEN r.failed THEN NULL ELSE 900000 + i % 400000 END,
           CASE WHEN r.failed THEN NULL ELSE md5('bytes-' || i) || md5('more-' || i) END,
           CASE WHEN r.failed THEN NULL ELSE 'images/' || (i / ${SLOTS}) || '/' || i || '.png' END, NULL,
           CASE WHEN w.provider = 'local' THEN NULL ELSE 'req_' || md5('request-' || i) END,
           CASE WHEN r.failed THEN 3 ELSE 1 END, CASE WHEN r.failed THEN 'provider error: 500 Internal Server Error' END,
           1, 1, 1, NOT r.failed AND r.favorite < 0.02,
           t.at - interval '40 seconds', t.at - interval '12 seconds', t.at, t.at - interval '40 seconds', t.at, t.at
    FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS i,
         LATERAL (SELECT random() < 0.03 AS failed, random() AS favorite, random() AS provider WHERE i IS NOT NULL) AS r,
         LATERAL (SELECT now() - make_interval(secs => 365 * 86400 * (1 - (i / ${SLOTS})::float8 / ${Math.ceil(total / SLOTS)}) - random() * 30) AS at) AS t,
         LATERAL (
           SELECT CASE WHEN random() < 0.5 THEN 'A ' ELSE 'The ' END || ${pick(ADJECTIVES, 1.6)} || ' ' || ${pick(SUBJECTS, 1.8)} || ' '
                    || ${pick(ACTIONS, 1.3)} || ' ' || ${pick(PLACES, 1.4)} || ' ' || ${pick(TIMES, 1.2)}
                    || CASE WHEN random() < 0.05
                            THEN ' with ' || ${pick(SYLLABLES, 1)} || ${pick(SYLLABLES, 1)} || ${pick(SYLLABLES, 1)}
                            ELSE '' END AS prompt,
                  ${pick(STYLES, 1.5)} AS style, ${pick(LIGHTING, 1.2)} AS light,
                  ${pick(REVISIONS, 1.2)} AS revision, ${pick(REVISIONS, 1.2)} AS revision2,
                  CASE ${providerCase} ELSE 'local' END AS provider
           -- A reference to i: one draw per row, not one for the whole statement.
           WHERE i IS NOT NULL
         ) AS w`;
}
