import { expect, it } from 'vitest';
import { createProviderGate } from '../../src/generation/provider-gate.ts';

it('when the shared limits cannot be read or written, calls go on under this process’s own pause', async () => {
  const errors: unknown[] = [];
  const broken = new Error('database unavailable');
  const gate = createProviderGate(2, {
    shared: {
      pauseLeft: () => Promise.reject(broken),
      pause: () => Promise.reject(broken),
      reserve: () => Promise.reject(broken),
      onError: (err) => errors.push(err),
    },
  });
  const signal = new AbortController().signal;
  expect(await gate.run(async () => 'called', signal)).toBe('called');
  gate.pause(30);
  const started = Date.now();
  expect(await gate.run(async () => Date.now() - started, signal)).toBeGreaterThanOrEqual(25);
  await new Promise((r) => setTimeout(r, 0));
  expect(errors.length).toBeGreaterThanOrEqual(3);
  expect(errors.every((e) => e === broken)).toBe(true);
});

it('waits for a pause another replica set, read from the shared limits', async () => {
  let reads = 0;
  const gate = createProviderGate(undefined, {
    shared: {
      pauseLeft: async () => (reads++ === 0 ? 40 : 0),
      pause: async () => {},
      onError: (err) => {
        throw err;
      },
    },
    sharedReadEveryMs: 0,
  });
  const started = Date.now();
  const waited = await gate.run(async () => Date.now() - started, new AbortController().signal);
  expect(waited).toBeGreaterThanOrEqual(35);
  expect(reads).toBeGreaterThanOrEqual(2);
});
