import { spawn, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/database.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { spawnService } from '../support/service-process.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const asRoot = process.getuid?.() === 0;

/** Runs `node src/main.ts` until it exits (it is expected to fail to start). */
function runToExit(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A start that wrongly succeeds would run on: stop it, so the test fails instead of leaking it.
    const stop = setTimeout(() => child.kill('SIGTERM'), 40_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(stop);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A start that fails says so in exactly one line on stderr, without a stack trace, and exits 1. */
function expectOneLine(run: { code: number | null; stderr: string }): string {
  expect(run.code).toBe(1);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(lines[0]).toMatch(/^sceneworks cannot start: /);
  return lines[0]!;
}

const dirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix)); // mode 0700, as `mktemp -d` makes it
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('DATA_DIR and the embedded PostgreSQL', () => {
  it('a fresh 0700 DATA_DIR (what mktemp -d makes) just works: PostgreSQL gets its directory and can reach it', async () => {
    const dataDir = await tempDir('sceneworks-start-');
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    const service = await spawnService({ DATA_DIR: dataDir });
    try {
      const res = await fetch(`${service.baseUrl}/healthz`);
      expect(res.status).toBe(200);
      // The service listens through startServer: what Node's parser refuses has the contract's body too.
      const tooLarge = await fetch(`${service.baseUrl}/healthz`, { headers: { 'x-big': 'a'.repeat(64 * 1024) } });
      expect(tooLarge.status).toBe(431);
      expect(((await tooLarge.json()) as { error: { code: string } }).error.code).toBe('HEADERS_TOO_LARGE');
      const own = await stat(path.join(dataDir, 'postgres'));
      if (asRoot) {
        // PostgreSQL runs as the system user "postgres": it owns its files, and may pass through DATA_DIR (x, not r).
        expect(own.uid).toBe(Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()));
        expect((await stat(dataDir)).mode & 0o777).toBe(0o701);
      } else {
        expect(own.uid).toBe(process.getuid!());
      }
    } finally {
      service.child.kill('SIGTERM');
      expect(await service.exited).toBe(0);
    }
  });

  it('a directory above DATA_DIR that PostgreSQL cannot enter: one sentence saying what to change, and it is left as it was', async () => {
    const outer = await tempDir('sceneworks-blocked-');
    const dataDir = path.join(outer, 'inner', 'data');
    if (asRoot) {
      const line = expectOneLine(await runToExit({ DATA_DIR: dataDir }));
      expect(line).toContain(`cannot enter ${outer} (mode 0700) above DATA_DIR ${dataDir}`);
      expect(line).toContain(`chmod o+x ${outer}`);
      // Not ours to change: only the operator opens a directory above DATA_DIR.
      expect((await stat(outer)).mode & 0o777).toBe(0o700);
    } else {
      // Not root: PostgreSQL runs as this user, who owns the directory, so nothing blocks it.
      const service = await spawnService({ DATA_DIR: dataDir });
      service.child.kill('SIGTERM');
      expect(await service.exited).toBe(0);
    }
  });

  it('a DATA_DIR that cannot be created (a file in its path): one line naming it', async () => {
    const file = path.join(await tempDir('sceneworks-file-'), 'not-a-directory');
    await writeFile(file, '');
    const line = expectOneLine(await runToExit({ DATA_DIR: path.join(file, 'data') }));
    expect(line).toBe(
      `sceneworks cannot start: cannot create the data directory ${path.join(file, 'data')} (ENOTDIR): set DATA_DIR to a directory this user can create or write, or set DATABASE_URL`,
    );
  });

  it('an initialised data directory PostgreSQL may not read: one line with what PostgreSQL said', async () => {
    const dataDir = await tempDir('sceneworks-unreadable-');
    const pgDir = path.join(dataDir, 'postgres');
    await mkdir(pgDir);
    // Looks initialised, so the service starts the server on it, which cannot use it.
    await writeFile(path.join(pgDir, 'PG_VERSION'), '18\n');
    const line = expectOneLine(await runToExit({ DATA_DIR: dataDir }));
    expect(line).toMatch(new RegExp(`^sceneworks cannot start: the embedded PostgreSQL did not start on ${pgDir}: \\S.*`));
  });
});

describe('other startup problems', () => {
  let db: TestDatabase;
  let holder: Server;
  let heldPort: number;
  beforeAll(async () => {
    db = await createTestDatabase();
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    heldPort = (holder.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => holder.close(resolve));
    await db.drop();
  });

  it('a database that does not answer: one line naming where, and DATABASE_URL', async () => {
    const port = await freePort();
    const line = expectOneLine(await runToExit({ DATA_DIR: await tempDir('sceneworks-nodb-'), DATABASE_URL: `postgres://u:p@127.0.0.1:${port}/db` }));
    expect(line).toBe(`sceneworks cannot start: cannot reach the database at 127.0.0.1:${port} (ECONNREFUSED): check DATABASE_URL`);
  });

  it('a port already taken: one line naming the address, and PORT', async () => {
    const run = await runToExit({ DATA_DIR: await tempDir('sceneworks-port-'), DATABASE_URL: db.url, PORT: String(heldPort) });
    const line = expectOneLine(run);
    expect(line).toBe(`sceneworks cannot start: cannot listen on 127.0.0.1:${heldPort}: the address is already in use; stop what holds it or set PORT`);
  });
});
