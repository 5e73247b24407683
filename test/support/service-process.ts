import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/db/database.ts';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface ServiceProcess {
  child: ChildProcess;
  baseUrl: string;
  /** Every JSON log line the process printed so far. */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
  /** What the process wrote to stderr so far. */
  stderr(): string;
  /** The last log lines and stderr, to explain a failure. */
  describe(): string;
  fetchJson(path: string, init?: RequestInit): Promise<{ status: number; body: any }>;
}

/** Starts the real service (`node src/main.ts`) as a child process and waits until it listens. */
export async function spawnService(env: Record<string, string>, timeoutMs = 30_000): Promise<ServiceProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<void>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'sceneworks listening') resolve();
        } catch {
          // not a log line
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    void exited.then((code) => reject(new Error(`service exited with ${code} before listening: ${stderr}`)));
    setTimeout(() => reject(new Error(`service did not listen within ${timeoutMs} ms: ${stderr}`)), timeoutMs).unref();
  });
  await listening;
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    child,
    baseUrl,
    logs,
    exited,
    stderr: () => stderr,
    describe: () => [...logs.slice(-15).map((l) => JSON.stringify(l)), stderr ? `stderr: ${stderr}` : ''].join('\n'),
    async fetchJson(path, init) {
      const res = await fetch(baseUrl + path, init);
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
  };
}
