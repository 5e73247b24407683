import { serve } from '@hono/node-server';
import { createApp } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createDeps } from './deps.ts';
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
const deps = await createDeps(config, log);
const app = createApp(deps);
if (config.RUNNER === 'on') deps.runner.start();

const server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, (info) => {
  log.info({ port: info.port, host: config.HOST, runner: config.RUNNER, concurrency: config.GENERATION_CONCURRENCY }, 'sceneworks listening');
});

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
  if ('closeIdleConnections' in server) server.closeIdleConnections();
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2_000).unref())]);
  await deps.db.close();
  log.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
