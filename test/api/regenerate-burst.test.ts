import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalProvider } from '../../src/providers/local.ts';
import type { ImageProvider } from '../../src/providers/provider.ts';
import { startTestApp, storedObjectKeys, type TestApp } from '../support/app.ts';
import { until } from '../support/gated-provider.ts';

/**
 * The local renderer behind a gate, with a random delay after it: while the gate is shut,
 * superseded and current claims of the same slots pile up; opening it lets them all finish
 * at once and in any order, so they meet in the same commit batches.
 */
function gatedJitteryLocal() {
  const local = createLocalProvider({ delayMs: 0 });
  let gate: PromiseWithResolvers<void> | undefined;
  let waiting = 0;
  const provider: ImageProvider = {
    name: 'local',
    defaultModel: null,
    async generate(request) {
      if (gate) {
        waiting += 1;
        await gate.promise.finally(() => (waiting -= 1));
      }
      await sleep(Math.floor(Math.random() * 15), undefined, { signal: request.signal });
      return local.generate(request);
    },
  };
  return {
    providers: new Map([['local', provider]]),
    waiting: () => waiting,
    shut: () => void (gate ??= Promise.withResolvers<void>()),
    open: () => {
      gate?.resolve();
      gate = undefined;
    },
  };
}

const provider = gatedJitteryLocal();
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ GENERATION_CONCURRENCY: '16' }, { providers: provider.providers });
});
afterAll(async () => {
  provider.open();
  await t.close();
});

const filesOf = (projectId: string) => storedObjectKeys(t.dataDir, projectId);

describe('bursts of overlapping regenerates of one scene', () => {
  it('leave every slot with the image of its latest generation, and exactly one stored object per row', async () => {
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'start' }, { prompt: 'other scene' }], imagesPerScene: 3 });
    expect(created.status).toBe(202);
    const id = created.body.id;
    await t.waitForProject(id);

    const allClaimed = () =>
      until(async () => {
        const [{ n }] = (await t.db.sql`SELECT count(*)::int AS n FROM generated_images WHERE content_creation_request_id = ${id} AND status = 'queued'`) as unknown as [{ n: number }];
        return n === 0;
      }, 'every queued slot to be claimed');
    const regenerate = (round: number, k: number) =>
      t.call('POST', `/projects/${id}/scenes/1/regenerate`, { prompt: `round ${round} try ${k}`, imagesPerScene: 2 + ((round + k) % 3) });

    for (let round = 0; round < 15; round++) {
      if (round % 2 === 0) {
        // Three generations of each slot are claimed and held at the gate, then all finish together.
        provider.shut();
        for (const k of [0, 1, 2]) {
          expect((await regenerate(round, k)).status).toBe(202);
          await allClaimed();
        }
        // At least 2 + 3 + 4 claims (imagesPerScene of the three), several of them of the same slot.
        await until(() => provider.waiting() >= 9, 'the three generations to reach the provider');
        provider.open();
      } else {
        // Three at once, racing each other and the runner.
        for (const res of await Promise.all([0, 1, 2].map((k) => regenerate(round, k)))) expect(res.status).toBe(202);
      }
      await sleep(Math.floor(Math.random() * 30));
    }
    const done = await t.waitForProject(id);
    await until(() => t.deps.runner.inFlight() === 0, 'every superseded claim to finish');
    expect(done.status).toBe('completed');

    const rows = await t.db.sql<{ sceneIndex: number; imageIndex: number; generation: number; prompt: string; fullPrompt: string; storageKey: string; status: string }[]>`
      SELECT scene_index, image_index, generation, prompt, full_prompt, storage_key, status
      FROM generated_images WHERE content_creation_request_id = ${id} ORDER BY scene_index, image_index`;
    const [{ scene }] = (await t.db.sql`SELECT generated_output -> 'scenes' -> 0 ->> 'prompt' AS scene FROM content_creation_requests WHERE id = ${id}`) as unknown as [{ scene: string }];
    for (const row of rows) {
      expect(row.status).toBe('succeeded');
      // The image was made for this generation of the slot, from the prompt the slot now has.
      expect(row.storageKey).toMatch(new RegExp(`/image-${row.imageIndex}-g${row.generation}-a\\d+\\.png$`));
      expect(row.fullPrompt).toBe(row.prompt);
      if (row.sceneIndex === 1) expect(row.prompt).toBe(scene);
    }
    // Nothing stored is unreferenced, nothing referenced is missing: current images and the
    // versions kept of them (most claims here are superseded before they commit).
    const versions = await t.db.sql<{ storageKey: string }[]>`
      SELECT storage_key FROM image_versions WHERE content_creation_request_id = ${id}`;
    expect(await filesOf(id)).toEqual([...rows, ...versions].map((r) => r.storageKey).sort());
    // What GET serves is what the rows say.
    const served = done.generatedOutput.scenes[0].imageUrls.map((u: string) => u.replace('http://sceneworks.test/files/', ''));
    expect(served).toEqual(rows.filter((r) => r.sceneIndex === 1).map((r) => r.storageKey));
  });
});
