import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

it('an unhandled rejection is logged as an error and the process lives on', async () => {
  const script = fileURLToPath(new URL('./fixtures/unhandled.ts', import.meta.url));
  const run = await promisify(execFile)(process.execPath, [script], { timeout: 30_000 });
  expect(JSON.parse(run.stdout.trim())).toEqual({ alive: true, logged: [expect.stringContaining('unhandled promise rejection (logged; the service keeps running): connection reset')] });
});
