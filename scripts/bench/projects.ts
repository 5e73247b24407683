import { setTimeout as sleep } from 'node:timers/promises';
import { listProjectSummaries } from '../../src/db/projects.ts';
import type { BenchService } from './service.ts';

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

/**
 * Resolves when every slot of `ids` has succeeded; a failed slot means the run is broken.
 * Watching must not slow what it watches: until `lastSlotStarted()` (the provider has been
 * called for the last slot) it only looks at a counter in this process; then it polls the
 * service's own progress query, on a connection of its own, every `everyMs`.
 */
export async function waitForSucceeded(
  service: BenchService,
  ids: readonly string[],
  options: { everyMs: number; lastSlotStarted: () => boolean; timeoutMs?: number },
): Promise<void> {
  const wanted = new Set(ids);
  const deadline = performance.now() + (options.timeoutMs ?? 90_000);
  const overdue = (what: string) => {
    if (performance.now() > deadline) throw new Error(`bench timed out: ${what}`);
  };
  while (!options.lastSlotStarted()) {
    overdue('the provider was never called for every slot');
    await sleep(1);
  }
  for (;;) {
    const rows = await listProjectSummaries(service.watch, { scope: service.deps.singleOwner, limit: 100, after: null, status: null });
    const mine = rows.filter((r) => wanted.has(r.id));
    const failed = mine.reduce((n, r) => n + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} slot(s) failed during the bench: ${(await failures(service, ids)).join(' | ')}`);
    if (mine.length === wanted.size && mine.every((r) => r.succeeded === r.total)) return;
    overdue(`slots still unfinished: ${JSON.stringify(mine)}`);
    await sleep(options.everyMs);
  }
}

/** A small project first, so a timed run does not pay for JIT warm-up and first connections. */
export async function warmUp(service: BenchService, calls: () => number): Promise<void> {
  const expected = calls() + 80;
  const id = await postProject(service, 20, 4);
  await waitForSucceeded(service, [id], { everyMs: 10, lastSlotStarted: () => calls() >= expected });
}

/** The distinct errors of failed slots, as GET /projects/:id shows them. */
async function failures(service: BenchService, ids: readonly string[]): Promise<string[]> {
  const errors = new Set<string>();
  for (const id of ids) {
    const res = await service.app.request(`/projects/${id}`);
    const project = (await res.json()) as { generatedOutput: { scenes: { images: { error: string | null }[] }[] } };
    for (const scene of project.generatedOutput.scenes) for (const image of scene.images) if (image.error) errors.add(image.error);
  }
  return [...errors].slice(0, 5);
}
