import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import pLimit from 'p-limit';
import { cpuWindow, describeCpu } from './cpu.ts';
import { postProject, waitForSucceeded, warmUp } from './projects.ts';
import { constantProvider } from './provider.ts';
import { judge, type Measurement } from './report.ts';
import { startService, type BenchPostgres, type BenchService } from './service.ts';

const MAX_SCENES = 200; // CreateProjectBody allows at most 200 scenes per project

/**
 * 1. Pipeline efficiency: with a provider that only waits, the best any runner can do is
 * ceil(N/C) waves of L ms. Whatever is above that is our overhead on the critical path.
 */
export async function measurePipeline(pg: BenchPostgres, png: Uint8Array): Promise<Measurement> {
  const scenes = MAX_SCENES;
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
    await warmUp(service, provider.calls);
    const expected = provider.calls() + slots;
    const cpu = cpuWindow(pg.cpuSeconds);
    const started = performance.now();
    const id = await postProject(service, scenes, imagesPerScene);
    const postMs = performance.now() - started;
    await waitForSucceeded(service, [id], { everyMs: 2, lastSlotStarted: () => provider.calls() >= expected });
    const seconds = (performance.now() - started) / 1000;
    const used = cpu();
    const waves = Math.ceil(slots / concurrency);
    const ideal = (waves * latencyMs) / 1000;
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
        'POST /projects': `${postMs.toFixed(0)} ms`,
        'overhead above ideal': `${((seconds - ideal) * 1000).toFixed(0)} ms = ${(((seconds - ideal) * 1000) / waves).toFixed(1)} ms per wave of ${concurrency}`,
        CPU: describeCpu(used, cpus().length),
      },
    });
  } finally {
    await service.close();
  }
}

/**
 * 2. Throughput with a provider that costs nothing. The ceiling is the per-image work that
 * has nothing to do with the queue (generate, sha256, store.put into the same store) at
 * the same concurrency, on the same store, without the database.
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
    await warmUp(service, provider.calls);
    const expected = provider.calls() + slots;
    const cpu = cpuWindow(pg.cpuSeconds);
    const started = performance.now();
    const ids = await Promise.all(Array.from({ length: projects }, () => postProject(service, scenes, imagesPerScene)));
    await waitForSucceeded(service, ids, { everyMs: 5, lastSlotStarted: () => provider.calls() >= expected });
    const seconds = (performance.now() - started) / 1000;
    const used = cpu();
    const perSecond = slots / seconds;
    const ceilingCpu = cpuWindow(pg.cpuSeconds);
    const storeOnly = await storeCeiling(service, png, slots, concurrency);
    const ceilingUsed = ceilingCpu();
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
        CPU: describeCpu(used, cpus().length),
        'CPU per image': `node ${perImageMs(used.nodeUser + used.nodeSystem, slots)} ms, postgres ${perImageMs(used.postgres, slots)} ms`,
        'ceiling CPU per image': `node ${perImageMs(ceilingUsed.nodeUser + ceilingUsed.nodeSystem, slots)} ms (${perImageMs(ceilingUsed.nodeSystem, slots)} ms sys)`,
      },
    });
  } finally {
    await service.close();
  }
}

const perImageMs = (seconds: number, images: number) => ((seconds * 1000) / images).toFixed(3);

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
        await service.deps.store.put(`bench-ceiling/scene-${i % MAX_SCENES}/image-${i}.png`, image.bytes, image.mimeType);
      }),
    ),
  );
  return count / ((performance.now() - started) / 1000);
}
