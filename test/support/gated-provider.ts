import { createLocalProvider } from '../../src/providers/local.ts';
import type { GenerateRequest, ImageProvider } from '../../src/providers/provider.ts';

/**
 * The real local renderer behind a gate the test opens and closes, so a test can look at
 * the service while an image is in flight. Counts the calls it received.
 */
export function gatedLocalProvider() {
  const local = createLocalProvider({ delayMs: 0 });
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  const calls: GenerateRequest[] = [];
  let waiting = 0;
  const provider: ImageProvider = {
    name: 'local',
    defaultModel: null,
    async generate(request) {
      calls.push(request);
      if (gate) {
        waiting += 1;
        try {
          await gate.promise;
        } finally {
          waiting -= 1;
        }
      }
      return local.generate(request);
    },
  };
  return {
    provider,
    providers: new Map([['local', provider]]),
    calls,
    waiting: () => waiting,
    close() {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      gate = { promise, open };
    },
    open() {
      gate?.open();
      gate = undefined;
    },
  };
}

export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
