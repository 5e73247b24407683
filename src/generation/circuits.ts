/**
 * A circuit breaker per provider, in this process: after `failures` transient failures in a
 * row the provider's circuit opens for `openMs` (projects with a failover list send their
 * slots to the next provider meanwhile); then calls are let through again, and one success
 * closes it while one more failure opens it again.
 */
export interface Circuits {
  isOpen(provider: string): boolean;
  success(provider: string): void;
  failure(provider: string): void;
}

export function createCircuits(o: { failures: number; openMs: number; now?: () => number }): Circuits {
  const now = o.now ?? Date.now;
  const state = new Map<string, { failures: number; openUntil: number }>();
  const of = (p: string) => {
    let s = state.get(p);
    if (!s) state.set(p, (s = { failures: 0, openUntil: 0 }));
    return s;
  };
  return {
    isOpen: (p) => of(p).openUntil > now(),
    success(p) {
      const s = of(p);
      s.failures = 0;
      s.openUntil = 0;
    },
    failure(p) {
      const s = of(p);
      s.failures += 1;
      if (s.failures >= o.failures) s.openUntil = now() + o.openMs;
    },
  };
}
