import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLocalProvider } from '../../src/providers/local.ts';
import { ProviderError, type ImageProvider } from '../../src/providers/provider.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/** A provider that is down: every call a transient 503. */
function down(calls: { n: number }): ImageProvider {
  return {
    name: 'flaky',
    defaultModel: null,
    async generate() {
      calls.n += 1;
      throw new ProviderError('flaky', 'service unavailable (test)', { transient: true, code: 'server', status: 503 });
    },
  };
}

function steady(): ImageProvider {
  const local = createLocalProvider({ delayMs: 0 });
  return { ...local, name: 'steady' };
}

let t: TestApp;
const flakyCalls = { n: 0 };
beforeAll(async () => {
  t = await startTestApp(
    { IMAGE_PROVIDER: 'local', MAX_ATTEMPTS: '2', RETRY_BASE_MS: '5', GENERATION_CONCURRENCY: '1', PROVIDER_CIRCUIT_FAILURES: '3', PROVIDER_CIRCUIT_OPEN_MS: '60000' },
    { providers: new Map<string, ImageProvider>([['flaky', down(flakyCalls)], ['steady', steady()], ['local', createLocalProvider({ delayMs: 0 })]]) },
  );
});
afterAll(() => t?.close());

it('a project with a failover list gets every image from the next provider while the first is down, and stops calling it once its circuit opens', async () => {
  const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'a lighthouse' }, { prompt: 'a storm' }, { prompt: 'a dawn' }], imagesPerScene: 2, aspectRatio: '1:1', providers: ['flaky', 'steady'] });
  expect(created.status).toBe(202);
  const done = await t.waitForProject(created.body.id);
  expect(done.progress).toMatchObject({ total: 6, succeeded: 6, failed: 0 });
  const images = await t.call('GET', `/images?projectId=${created.body.id}`);
  expect(images.body.items.map((i: { provider: string }) => i.provider)).toEqual(Array(6).fill('steady'));
  // Slot 1: two calls (its attempts), slot 2: one more, and the circuit (3 in a row) opens: no slot after calls it.
  expect(flakyCalls.n).toBe(3);
  // The settings still show the first choice.
  expect(done.settings.provider).toBe('flaky');
});

it('without a failover list a provider that is down fails its slots, as before', async () => {
  const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'alone' }], provider: 'flaky' });
  const done = await t.waitForProject(created.body.id);
  expect(done.status).toBe('failed');
  expect(done.generatedOutput.scenes[0].images[0]).toMatchObject({ status: 'failed', provider: 'flaky' });
});

it('refuses a failover list it cannot follow', async () => {
  const both = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], provider: 'steady', providers: ['flaky', 'steady'] });
  expect(both.status).toBe(400);
  const unknown = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], providers: ['steady', 'nowhere'] });
  expect(unknown.status).toBe(400);
  expect(unknown.body.error.details[0].path).toEqual(['providers', 1]);
  const twice = await t.call('POST', '/projects', { scenes: [{ prompt: 'x' }], providers: ['steady', 'steady'] });
  expect(twice.status).toBe(400);
});
