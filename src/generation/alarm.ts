/**
 * A sleep that can be cut short: `idle(ms)` resolves after ms, or as soon as `wake()` is
 * called. A wake that comes while nobody sleeps is kept, so the next idle returns at once
 * (no lost wake-ups between "found nothing to do" and "go to sleep").
 */
export function createAlarm() {
  let wakeUp: (() => void) | undefined;
  let woken = false;
  return {
    wake() {
      woken = true;
      wakeUp?.();
    },
    idle(ms: number): Promise<void> {
      if (woken) {
        woken = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeUp = undefined;
          woken = false;
          resolve();
        }
        wakeUp = done;
      });
    },
  };
}
