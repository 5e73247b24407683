import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLocalProvider } from '../../src/providers/local.ts';
import type { GenerateRequest, ImageProvider } from '../../src/providers/provider.ts';
import { StoreError, type ObjectStore } from '../../src/storage/store.ts';
import { startTestApp } from '../support/app.ts';

/** The local renderer, counting its calls, each taking `delayMs`. */
function countingLocal(delayMs: number) {
  const local = createLocalProvider({ delayMs: 0 });
  const calls: GenerateRequest[] = [];
  const provider: ImageProvider = {
    name: 'local',
    defaultModel: null,
    async generate(request) {
      calls.push(request);
      await sleep(delayMs, undefined, { signal: request.signal });
      return local.generate(request);
    },
  };
  return { providers: new Map([['local', provider]]), calls };
}

async function slotRows(t: Awaited<ReturnType<typeof startTestApp>>, projectId: string) {
  return t.db.sql<{ status: string; attempts: number; storageKey: string | null }[]>`
    SELECT status, attempts, storage_key FROM generated_images WHERE content_creation_request_id = ${projectId} ORDER BY scene_index, image_index`;
}

describe('the lease heartbeat', () => {
  it('keeps a slot whose provider call outlasts LEASE_MS: it is paid for once, never reclaimed', async () => {
    // Recovery runs every 50 ms; without a heartbeat the 1 s lease expires mid-call and the slot is generated again.
    const provider = countingLocal(3_500);
    const t = await startTestApp({ LEASE_MS: '1000', POLL_INTERVAL_MS: '50', GENERATION_CONCURRENCY: '2' }, { providers: provider.providers });
    try {
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'slow one' }, { prompt: 'slow two' }] });
      const done = await t.waitForProject(created.body.id);
      expect(done.status).toBe('completed');
      expect(provider.calls).toHaveLength(2);
      expect((await slotRows(t, created.body.id)).map((r) => [r.status, r.attempts])).toEqual([
        ['succeeded', 1],
        ['succeeded', 1],
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('storing a paid image', () => {
  it('a store that fails for a moment is retried on its own: the image is not generated again', async () => {
    const provider = countingLocal(0);
    const puts: string[] = [];
    let failuresLeft = 2;
    const flaky = (store: ObjectStore): ObjectStore => ({
      ...store,
      name: store.name,
      async put(key, bytes, contentType) {
        puts.push(key);
        if (failuresLeft-- > 0) throw new StoreError('storage is briefly unavailable', { permanent: false, code: 'ECONNRESET' });
        return store.put(key, bytes, contentType);
      },
      remove: (keys) => store.remove(keys),
    });
    const t = await startTestApp({ MAX_ATTEMPTS: '3', RETRY_BASE_MS: '10' }, { providers: provider.providers, wrapStore: flaky });
    try {
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'kept' }] });
      const done = await t.waitForProject(created.body.id);
      expect(done.status).toBe('completed');
      expect(provider.calls).toHaveLength(1);
      expect(puts).toHaveLength(3);
      expect(new Set(puts).size).toBe(1); // the same key each time: never a second object
      const [row] = await slotRows(t, created.body.id);
      expect(row).toMatchObject({ status: 'succeeded', attempts: 1, storageKey: puts[0] });
    } finally {
      await t.close();
    }
  });
});
