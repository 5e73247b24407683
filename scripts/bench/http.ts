import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { postProject, waitForSucceeded } from './projects.ts';
import { cpuWindow } from './cpu.ts';
import { constantProvider } from './provider.ts';
import { judge, type Measurement } from './report.ts';
import { startService, type BenchPostgres } from './service.ts';

const run = promisify(execFile);

export interface Listening {
  url: string;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 and a free port, as src/main.ts serves the app. */
export function listen(fetch: (request: Request) => Response | Promise<Response>): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            if ('closeAllConnections' in server) server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
    server.once('error', reject);
  });
}

interface Load {
  requests: number;
  requestsPerSecond: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

/**
 * autocannon in a process of its own: in ours it would share the event loop with the
 * server it measures.
 */
async function autocannon(url: string, seconds: number, connections: number): Promise<Load> {
  const cli = fileURLToPath(import.meta.resolve('autocannon'));
  const { stdout } = await run(process.execPath, [cli, '-c', String(connections), '-d', String(seconds), '-j', url], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const result = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p99: number };
    non2xx: number;
    errors: number;
  };
  return { requests: result.requests.total, requestsPerSecond: result.requests.average, p99Ms: result.latency.p99, non2xx: result.non2xx, errors: result.errors };
}

const perRequestMs = (cpuSeconds: number, load: Load) => ((cpuSeconds * 1000) / load.requests).toFixed(3);

/**
 * 3. GET /projects/:id of a finished 100 × 4 project through the whole service, against a
 * bare Hono server that sends the very same JSON object from memory (c.json). Measured twice:
 * with the project cache off (every request: two queries, merging 400 rows, serializing)
 * and on (one version query, then the serialized answer).
 */
export async function measureProjectReads(pg: BenchPostgres, png: Uint8Array, seconds: number, cache: boolean): Promise<Measurement> {
  const connections = 20;
  const provider = constantProvider(png, 0);
  const service = await startService(pg, cache ? 'reads_cached' : 'reads_uncached', provider, {
    GENERATION_CONCURRENCY: '32',
    DATABASE_POOL_SIZE: '20',
    PROJECT_CACHE_MB: cache ? '64' : '0',
  });
  let real: Listening | undefined;
  let bare: Listening | undefined;
  try {
    const id = await postProject(service, 100, 4);
    await waitForSucceeded(service, [id], { everyMs: 20, lastSlotStarted: () => provider.calls() >= 400 });
    real = await listen(service.app.fetch);
    const path = `/projects/${id}`;
    const response = await fetch(real.url + path);
    if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status}`);
    const project: unknown = await response.json();

    const held = new Hono();
    held.get('/projects/:id', (c) => c.json(project as object));
    bare = await listen(held.fetch);
    const realBytes = Buffer.byteLength(await (await fetch(real.url + path)).text());
    const bareBytes = Buffer.byteLength(await (await fetch(bare.url + path)).text());

    // A short run each first: JIT, pool connections, sockets.
    await autocannon(real.url + path, 1, connections);
    await autocannon(bare.url + path, 1, connections);
    const realCpu = cpuWindow(pg.cpuSeconds);
    const measured = await autocannon(real.url + path, seconds, connections);
    const realUsed = realCpu();
    const bareCpu = cpuWindow(pg.cpuSeconds);
    const ceiling = await autocannon(bare.url + path, seconds, connections);
    const bareUsed = bareCpu();
    if (measured.non2xx + measured.errors + ceiling.non2xx + ceiling.errors > 0) {
      throw new Error(`HTTP errors under load: real ${JSON.stringify(measured)}, bare ${JSON.stringify(ceiling)}`);
    }
    return judge({
      name: `GET /projects/:id (100 × 4, done), cache ${cache ? 'on' : 'off'}`,
      unit: 'req/s',
      measured: measured.requestsPerSecond,
      baseline: { label: 'ceiling: bare Hono, same JSON from memory', value: ceiling.requestsPerSecond },
      ratio: measured.requestsPerSecond / ceiling.requestsPerSecond,
      target: { of: 'ratio', min: 0.3 },
      details: {
        autocannon: `-c ${connections} -d ${seconds} (own process), after a 1 s warm-up`,
        'body bytes': realBytes === bareBytes ? realBytes : `${realBytes} real vs ${bareBytes} bare`,
        'p99 latency': `${measured.p99Ms} ms real, ${ceiling.p99Ms} ms bare`,
        DATABASE_POOL_SIZE: 20,
        'CPU per request': `real: node ${perRequestMs(realUsed.nodeUser + realUsed.nodeSystem, measured)} ms + postgres ${perRequestMs(realUsed.postgres, measured)} ms; bare: node ${perRequestMs(bareUsed.nodeUser + bareUsed.nodeSystem, ceiling)} ms`,
      },
    });
  } finally {
    await real?.close();
    await bare?.close();
    await service.close();
  }
}
