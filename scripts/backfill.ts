/**
 * npm run backfill -- [--dry-run] [--batch-size N] [--project ID] [--prune-legacy]
 *                     [--rehost] [--rehost-concurrency N] [--rehost-timeout-ms N]
 *                     [--report FILE] [--json]
 *        npm run backfill -- --assign-owner UUID [--dry-run] [--batch-size N] [--project ID] [--json]
 *
 * Moves legacy generated_output.scenes[].imageUrls into generated_images (see README,
 * "Backfilling legacy data"). Uses the same configuration as the service (DATABASE_URL, or
 * the embedded PostgreSQL under DATA_DIR; STORAGE for --rehost). Progress goes to stderr, the
 * summary to stdout. Exits non-zero only when the run itself failed.
 *
 * --assign-owner gives every project with no owner (user_id null) that owner, in batches; it is
 * a run of its own (no image is moved), resumable like the backfill.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { assignOwner } from '../src/backfill/assign-owner.ts';
import { rehostLegacyImages, type RehostSummary } from '../src/backfill/rehost.ts';
import { runBackfill, type BackfillProgress, type BackfillSummary } from '../src/backfill/run.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createDeps } from '../src/deps.ts';
import { createLogger } from '../src/log.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function usage(message: string): never {
  console.error(`backfill: ${message}`);
  console.error('usage: npm run backfill -- [--dry-run] [--batch-size N] [--project ID] [--prune-legacy] [--rehost] [--rehost-concurrency N] [--rehost-timeout-ms N] [--report FILE] [--json]');
  console.error('       npm run backfill -- --assign-owner UUID [--dry-run] [--batch-size N] [--project ID] [--json]');
  process.exit(2);
}

function positive(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) usage(`--${name} must be an integer 1..${max}, got "${value}"`);
  return n;
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      'dry-run': { type: 'boolean', default: false },
      'batch-size': { type: 'string', default: '500' },
      project: { type: 'string' },
      'prune-legacy': { type: 'boolean', default: false },
      rehost: { type: 'boolean', default: false },
      'rehost-concurrency': { type: 'string', default: '8' },
      'rehost-timeout-ms': { type: 'string', default: '30000' },
      report: { type: 'string' },
      json: { type: 'boolean', default: false },
      'assign-owner': { type: 'string' },
    },
    strict: true,
  }).values;
}
try {
  args = parse();
} catch (err) {
  usage((err as Error).message);
}
const batchSize = positive('batch-size', args['batch-size'], 100_000);
const rehostConcurrency = positive('rehost-concurrency', args['rehost-concurrency'], 1_000);
const rehostTimeoutMs = positive('rehost-timeout-ms', args['rehost-timeout-ms'], 3_600_000);
if (args.project !== undefined && !UUID.test(args.project)) usage(`--project must be a project id (a UUID), got "${args.project}"`);
if (args['dry-run'] && (args.rehost || args['prune-legacy'])) usage('--dry-run writes nothing: it cannot be combined with --rehost or --prune-legacy');
if (args['assign-owner'] !== undefined) {
  if (!UUID.test(args['assign-owner'])) usage(`--assign-owner must be a user id (a UUID), got "${args['assign-owner']}"`);
  if (args.rehost || args['prune-legacy'] || args.report) usage('--assign-owner is a run of its own: it cannot be combined with --rehost, --prune-legacy or --report');
}

/** A bar with count, rate and ETA on a terminal; a plain line every few seconds otherwise. */
function progressReporter(label: string) {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} {bar} {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted}`, stream: process.stderr, etaBuffer: 20 },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const t0 = Date.now();
    return {
      update(value: number, total: number) {
        if (!started) {
          bar.start(total, 0, { rate: '0' });
          started = true;
        }
        bar.setTotal(total);
        bar.update(value, { rate: Math.round(value / Math.max(0.001, (Date.now() - t0) / 1000)).toLocaleString('en') });
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = 0;
  const t0 = Date.now();
  return {
    update(value: number, total: number) {
      const now = Date.now();
      if (now - last < 2_000 && value < total) return;
      last = now;
      const rate = value / Math.max(0.001, (now - t0) / 1000);
      const eta = rate > 0 ? Math.round((total - value) / rate) : 0;
      process.stderr.write(`${label}: ${value}/${total} (${Math.round(rate)}/s, ETA ${eta}s)\n`);
    },
    stop() {},
  };
}

function reportLine(out: WriteStream | undefined, record: object) {
  out?.write(`${JSON.stringify(record)}\n`);
}

function text(summary: BackfillSummary, rehost: RehostSummary | undefined, seconds: number): string {
  const lines = [
    summary.dryRun ? 'backfill (dry run: nothing was written)' : 'backfill',
    `  projects scanned:     ${summary.projectsScanned}`,
    `  legacy images found:  ${summary.legacyImages}`,
    summary.dryRun ? `  would insert:         ${summary.wouldInsert}` : `  rows inserted:        ${summary.rowsInserted}`,
    `  already present:      ${summary.alreadyPresent}`,
    `  skipped:              ${summary.skippedTotal}`,
    ...Object.entries(summary.skipped).filter(([, n]) => n > 0).map(([reason, n]) => `    ${reason}: ${n}`),
  ];
  if (!summary.dryRun && summary.rowsInserted === 0) lines.push('  nothing to insert: every legacy image already has its row');
  if (args['prune-legacy']) lines.push(`  scenes pruned:        ${summary.scenesPruned}`);
  if (rehost) {
    lines.push(`  rehosted:             ${rehost.rehosted} of ${rehost.candidates}`, `  rehost failed:        ${rehost.failed}`);
    lines.push(...Object.entries(rehost.failedByReason).map(([reason, n]) => `    ${reason}: ${n}`));
  }
  lines.push(`  time:                 ${seconds.toFixed(1)} s`);
  return lines.join('\n');
}

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) for (const p of err.problems) console.error(`config: ${p}`);
  else console.error(err);
  process.exit(1);
}
const log = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL);
const deps = await createDeps(config, log);
const report = args.report ? createWriteStream(args.report) : undefined;
const started = performance.now();
let failed = false;
try {
  if (args['assign-owner'] !== undefined) {
    const bar = progressReporter('assign owner');
    const summary = await assignOwner(deps.db.sql, {
      ownerId: args['assign-owner'],
      batchSize,
      projectId: args.project,
      dryRun: args['dry-run'],
      onBatch: (p) => bar.update(p.assigned, p.total),
    });
    bar.stop();
    const seconds = (performance.now() - started) / 1000;
    console.log(
      args.json
        ? JSON.stringify({ ...summary, seconds }, null, 2)
        : `assign owner${summary.dryRun ? ' (dry run: nothing was written)' : ''}\n  projects without an owner: ${summary.unowned}\n  assigned:                  ${summary.assigned}\n  time:                      ${seconds.toFixed(1)} s`,
    );
  } else {
    const bar = progressReporter('projects');
    const summary = await runBackfill(deps.db.sql, {
      batchSize,
      dryRun: args['dry-run'],
      projectId: args.project,
      pruneLegacy: args['prune-legacy'],
      onBatch: (p: BackfillProgress) => bar.update(p.projectsScanned, p.projectsTotal),
      onSkip: (skip) => reportLine(report, { projectId: skip.projectId, scene: skip.scene, sceneIndex: skip.sceneIndex, imageIndex: skip.imageIndex, reason: skip.reason }),
    });
    bar.stop();
    let rehost: RehostSummary | undefined;
    if (args.rehost) {
      const rehostBar = progressReporter('rehost');
      rehost = await rehostLegacyImages(deps.db.sql, deps.store, {
        concurrency: rehostConcurrency,
        timeoutMs: rehostTimeoutMs,
        fetch: deps.legacyFetch,
        batchSize,
        projectId: args.project,
        onProgress: (p) => rehostBar.update(p.done, Math.max(p.done, rehost?.candidates ?? p.done)),
        onFailure: (f) => reportLine(report, { ...f, reason: `rehost: ${f.reason}` }),
      });
      rehostBar.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(args.json ? JSON.stringify({ ...summary, rehost: rehost ?? null, seconds }, null, 2) : text(summary, rehost, seconds));
  }
} catch (err) {
  failed = true;
  console.error('backfill: the run failed:', err);
} finally {
  await new Promise<void>((resolve) => (report ? report.end(resolve) : resolve()));
  await deps.close();
}
process.exit(failed ? 1 : 0);
