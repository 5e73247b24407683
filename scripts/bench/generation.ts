import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { listProjectSummaries } from '../../src/db/projects.ts';
import { judge, type Measurement } from './report.ts';
import { constantProvider } from './provider.ts';
import { startService, type BenchPostgres, type BenchService } from './service.ts';

const MAX_SCENES = 200; // CreateProjectBody allows at most 200 scenes per project

/** POSTs one project through the real app (in-process) and returns its id. */
export async function postProject(service: BenchService, scenes: number, imagesPerScene: number): Promise<string> {
  const body = {
    title: `bench ${scenes}x${imagesPerScene}`,
    scenes: Array.from({ length: scenes }, (_, i) => ({ prompt: `bench scene ${i + 1}: a lighthouse at dusk` })),
    imagesPerScene,
    aspectRatio: '1:1',
  };
  const res = await service.app.request('/projects', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 202) throw new Error(`POST /projects answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Resolves when every slot of `ids` has succeeded; any failed slot means the run is broken. */
export async function waitForSucceeded(service: BenchService, ids: readonly string[], everyMs: number, timeoutMs = 90_000): Promise<void> {
  const wanted = new Set(ids);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    // The service's own progress query, on a connection of its own.
    const rows = await listProjectSummaries(service.watch, { ownerId: service.deps.ownerId, limit: 100, after: null, status: null });
    const mine = rows.filter((r) => wanted.has(r.id));
    const failed = mine.reduce((n, r) => n + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} slot(s) failed during the bench`);
    if (mine.length === wanted.size && mine.every((r) => r.succeeded === r.total)) return;
    if (performance.now() > deadline) throw new Error(`slots still unfinished after ${timeoutMs} ms: ${JSON.stringify(mine)}`);
    await sleep(everyMs);
  }
}

/** A small project first, so the timed run does not pay for JIT warm-up and first connections. */
async function warmUp(service: BenchService) {
  const id = await postProject(service, 20, 4);
  await waitForSucceeded(service, [id], 10);
}

/**
 * 1. Pipeline efficiency: with a provider that only waits, the best any runner can do is
 * ceil(N/C) waves of L ms. Whatever is above that is our overhead per slot.
 */
export async function measurePipeline(pg: BenchPostgres, png: Uint8Array): Promise<Measurement> {
  const scenes = 200;
  const imagesPerScene = 5;
  const concurrency = 50;
  const latencyMs = 100;
  const slots = scenes * imagesPerScene;
  const provider = constantProvider(png, latencyMs);
  const service = await startService(pg, 'pipeline', provider, {
    GENERATION_CONCURRENCY: String(concurrency),
    DATABASE_POOL_SIZE: String(concurrency + 10),
  });
  try {
    await warmUp(service);
    const started = performance.now();
    const id = await postProject(service, scenes, imagesPerScene);
    await waitForSucceeded(service, [id], 5);
    const seconds = (performance.now() - started) / 1000;
    const ideal = (Math.ceil(slots / concurrency) * latencyMs) / 1000;
    return judge({
      name: 'pipeline efficiency',
      unit: 's',
      measured: seconds,
      baseline: { label: 'ideal ceil(N/C)·L', value: ideal },
      ratio: ideal / seconds,
      target: { of: 'ratio', min: 0.95 },
      details: {
        slots: `${slots} (${scenes} scenes × ${imagesPerScene} images, one POST)`,
        GENERATION_CONCURRENCY: concurrency,
        'provider latency': `${latencyMs} ms (timer)`,
        'per-slot overhead above ideal': `${(((seconds - ideal) * 1000) / Math.ceil(slots / concurrency)).toFixed(1)} ms per wave`,
      },
    });
  } finally {
    await service.close();
  }
}

/**
 * 2. Throughput with a provider that costs nothing. The ceiling is the per-image work that
 * has nothing to do with the queue (generate, sha256, store.put into the same store) at
 * the same concurrency, measured on the same store.
 */
export async function measureThroughput(pg: BenchPostgres, png: Uint8Array, concurrency: number): Promise<Measurement> {
  const projects = 5;
  const scenes = MAX_SCENES;
  const imagesPerScene = 5;
  const slots = projects * scenes * imagesPerScene;
  const provider = constantProvider(png, 0);
  const service = await startService(pg, 'throughput', provider, {
    GENERATION_CONCURRENCY: String(concurrency),
    DATABASE_POOL_SIZE: String(concurrency + 10),
  });
  try {
    await warmUp(service);
    const started = performance.now();
    const ids = await Promise.all(Array.from({ length: projects }, () => postProject(service, scenes, imagesPerScene)));
    await waitForSucceeded(service, ids, 10);
    const seconds = (performance.now() - started) / 1000;
    const perSecond = slots / seconds;
    const storeOnly = await storeCeiling(service, png, slots, concurrency);
    return judge({
      name: 'throughput (zero-latency provider)',
      unit: 'images/s',
      measured: perSecond,
      baseline: { label: 'ceiling: generate+sha256+store.put, no DB', value: storeOnly },
      ratio: perSecond / storeOnly,
      target: { of: 'measured', min: 2_000 },
      details: {
        slots: `${slots} (${projects} projects × ${scenes} scenes × ${imagesPerScene} images, POSTed together)`,
        GENERATION_CONCURRENCY: concurrency,
        DATABASE_POOL_SIZE: concurrency + 10,
        'wall time': `${seconds.toFixed(2)} s`,
        'PNG bytes': png.byteLength,
      },
    });
  } finally {
    await service.close();
  }
}

async function storeCeiling(service: BenchService, png: Uint8Array, count: number, concurrency: number): Promise<number> {
  const provider = constantProvider(png, 0);
  const limit = pLimit(concurrency);
  const signal = new AbortController().signal;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(async () => {
        const image = await provider.generate({ prompt: '', fullPrompt: '', aspectRatio: '1:1', width: 64, height: 64, seed: i, model: null, signal });
        createHash('sha256').update(image.bytes).digest('hex');
        await service.deps.store.put(`bench-ceiling/scene-${i % 200}/image-${i}.png`, image.bytes, image.mimeType);
      }),
    ),
  );
  return count / ((performance.now() - started) / 1000);
}
