import { logUnhandledRejections } from './unhandled.ts';
import { createApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { EmbeddedPostgresError } from './db/database.ts';
import { DataDirectoryError } from './db/data-directory.ts';
import { createDeps, type Deps } from './deps.ts';
import { ListenError, startServer } from './http/server.ts';
import { createLogger } from './log.ts';

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    for (const problem of err.problems) console.error(`config: ${problem}`);
    process.exit(2);
  }
  throw err;
}

const log = createLogger(config.LOG_LEVEL);
logUnhandledRejections(log);

/** Network errors of a database driver that cannot reach its server. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'CONNECT_TIMEOUT']);

/**
 * What stopped the start, as one line. Problems of the machine or the configuration (data
 * directory, database, storage, port) are not bugs of the service: no stack trace for them.
 */
function startupProblem(err: unknown): string {
  if (err instanceof DataDirectoryError || err instanceof EmbeddedPostgresError || err instanceof ListenError) return err.message;
  const e = err as { code?: unknown; address?: unknown; port?: unknown; hostname?: unknown; severity?: unknown; message?: unknown };
  const checkUrl = config.DATABASE_URL ? ': check DATABASE_URL' : '';
  if (typeof e.code === 'string' && UNREACHABLE.has(e.code)) {
    const where = e.address !== undefined ? `${String(e.address)}:${String(e.port)}` : String(e.hostname ?? 'its address');
    return `cannot reach the database at ${where} (${e.code})${checkUrl}`;
  }
  // A PostgreSQL error (SQLSTATE code and severity): a wrong password, a missing database…
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string') {
    return `the database refused: ${String(e.message)} (${e.code})${checkUrl}`;
  }
  return messageChain(err);
}

/** An error's message and its causes' messages, on one line. */
function messageChain(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 5; e = (e as { cause?: unknown }).cause) {
    const text = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').trim();
    if (text && !parts.some((p) => p.includes(text))) parts.push(text);
    if (!(e instanceof Error)) break;
  }
  return parts.join(': ') || 'unknown error';
}

function failStart(err: unknown): never {
  console.error(`sceneworks cannot start: ${startupProblem(err)}`);
  // The stack trace is for debugging the service itself, not for a setup problem.
  if (config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace') console.error(err);
  process.exit(1);
}

let deps: Deps;
try {
  deps = await createDeps(config, log);
} catch (err) {
  failStart(err);
}
const app = createApp(deps);
const server = await startServer(app, { port: config.PORT, hostname: config.HOST, log }).catch(async (err: unknown) => {
  await deps.close().catch(() => {});
  return failStart(err);
});
if (config.RUNNER === 'on') {
  deps.runner.start();
  deps.webhooks?.start();
}
const address = server.address();
log.info(
  { port: typeof address === 'object' && address ? address.port : config.PORT, host: config.HOST, runner: config.RUNNER, concurrency: config.GENERATION_CONCURRENCY },
  'sceneworks listening',
);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  // Stop accepting requests, then drain the runner (it gives unfinished slots back), then close the pool.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Open event streams end now, so the server can close.
  await deps.projectEvents.close();
  await deps.runner.stop(config.SHUTDOWN_GRACE_MS);
  server.closeIdleConnections();
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2_000).unref())]);
  await deps.db.close();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
