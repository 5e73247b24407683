/**
 * npm run -s bench -- [--json] [--concurrency N] [--http-seconds S] [--only pipeline,throughput,reads,backfill,race,gallery,archive,scale,watchers,queue] [--gallery-images N] [--queue-base N] [--queue-processed N] [--watchers-large N]
 * (-s keeps npm's banner off stdout, so --json output parses.)
 *
 * Measures, in one run on one embedded PostgreSQL, how close the service comes to what this
 * machine allows: every figure is set against a baseline measured in the same run. Progress
 * goes to stderr; the report (markdown, or JSON with --json) to stdout. The exit code says
 * whether the bench ran, not whether the targets were met.
 */
import { parseArgs } from 'node:util';
import { measurePipeline, measureThroughput } from './bench/generation.ts';
import { measureArchive } from './bench/archive.ts';
import { measureBackfill } from './bench/backfill.ts';
import { measureGallery } from './bench/gallery.ts';
import { measureProjectReads } from './bench/http.ts';
import { measureQueueChurn } from './bench/queue-churn.ts';
import { measureRace } from './bench/race.ts';
import { measureScaleReads } from './bench/scale-reads.ts';
import { measureWatchers } from './bench/watchers.ts';
import { smallPng } from './bench/provider.ts';
import { describeMachine, json, markdown, type Measurement } from './bench/report.ts';
import { startBenchPostgres } from './bench/service.ts';
import { createLogger } from '../src/log.ts';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '64' },
    'http-seconds': { type: 'string', default: '6' },
    only: { type: 'string' },
    'gallery-images': { type: 'string', default: '10000000' },
    'queue-base': { type: 'string', default: '5000000' },
    'watchers-large': { type: 'string', default: '100000' },
    'queue-processed': { type: 'string', default: '500000' },
  },
});
const throughputConcurrency = Number(args.concurrency);
const httpSeconds = Number(args['http-seconds']);
if (!Number.isInteger(throughputConcurrency) || throughputConcurrency < 1 || !Number.isInteger(httpSeconds) || httpSeconds < 1) {
  console.error('usage: npm run bench -- [--json] [--concurrency N] [--http-seconds S]');
  process.exit(2);
}

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);
const started = performance.now();
const pg = await startBenchPostgres(createLogger('warn'));
const measurements: Measurement[] = [];
try {
  const png = await smallPng();
  const want = (name: string) => args.only === undefined || args.only.split(',').includes(name);
  if (want('pipeline')) progress('1/5 pipeline efficiency (1,000 slots, 100 ms provider, concurrency 50)');
  if (want('pipeline')) measurements.push(await measurePipeline(pg, png));
  if (want('throughput')) progress(`2/5 throughput (5,000 slots, zero-latency provider, concurrency ${throughputConcurrency})`);
  if (want('throughput')) measurements.push(await measureThroughput(pg, png, throughputConcurrency));
  if (want('reads')) progress(`3/5 GET /projects/:id under autocannon (${httpSeconds} s per server), project cache off, then on`);
  if (want('reads')) measurements.push(await measureProjectReads(pg, png, httpSeconds, false));
  if (want('reads')) measurements.push(await measureProjectReads(pg, png, httpSeconds, true));
  if (want('backfill')) progress('4/5 backfill of 1,000,000 legacy URLs, against a bare INSERT ... SELECT and a row-at-a-time loop');
  if (want('backfill')) measurements.push(...(await measureBackfill(pg)));
  if (want('race')) progress('5/5 legacy race: 1,000 concurrent image saves into one project, JSON read-modify-write vs row upserts (pool of 10)');
  if (want('race')) measurements.push(...(await measureRace(pg)));
  if (want('gallery')) progress(`gallery: GET /images on ${Number(args['gallery-images']).toLocaleString('en-US')} images, 10% one owner's (fill, then p50/p99 vs bare SQL)`);
  if (want('gallery')) measurements.push(...(await measureGallery(pg, Number(args['gallery-images']), progress)));
  if (want('scale')) progress('scale: GET /projects?status= on 100,000 projects vs unfiltered; cache hits at 200 x 8 vs 10 x 4');
  if (want('scale')) measurements.push(...(await measureScaleReads(pg, png, progress)));
  if (want('watchers')) progress(`watchers: 10,000 slots with 200 event streams vs none, the service in a process of its own (throughput, peak RSS), then ${Number(args['watchers-large']).toLocaleString('en-US')} slots (peak RSS)`);
  if (want('watchers')) measurements.push(...(await measureWatchers(pg, progress, Number(args['watchers-large']))));
  if (want('queue')) {
    const sizes = { base: Number(args['queue-base']), processed: Number(args['queue-processed']) };
    progress(`queue: claim, queue position and recovery on ${sizes.base.toLocaleString('en-US')} slots, after VACUUM and after ${sizes.processed.toLocaleString('en-US')} more went through (tuned autovacuum, then PostgreSQL's defaults)`);
    measurements.push(...(await measureQueueChurn(pg, { ...sizes, defaults: false }, progress)));
    measurements.push(...(await measureQueueChurn(pg, { ...sizes, defaults: true }, progress)));
  }
  if (want('archive')) progress('archive: GET /projects/:id/archive of 1,000 images of 1 MiB, the service in a process of its own (RSS growth, throughput)');
  if (want('archive')) measurements.push(...(await measureArchive(pg, progress)));
} catch (err) {
  console.error('bench: the run crashed:', err);
  process.exitCode = 1;
} finally {
  await pg.stop();
}

if (process.exitCode !== 1) {
  const machine = describeMachine(pg.version);
  const seconds = (performance.now() - started) / 1000;
  console.log(args.json ? json(machine, measurements, seconds) : markdown(machine, measurements, seconds));
}
