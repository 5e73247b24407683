import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const CHECK = fileURLToPath(new URL('../../scripts/check-node.cjs', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));
const { nodeVersionProblem } = createRequire(import.meta.url)(CHECK) as { nodeVersionProblem(version: string): string | undefined };

/** The machine's own Node when it is one the service refuses (20 on these machines). */
function oldNode(): string | undefined {
  const candidate = '/usr/bin/node';
  if (!existsSync(candidate)) return undefined;
  const version = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  return nodeVersionProblem(version) ? candidate : undefined;
}

it('the version check refuses what cannot load .ts files and accepts the rest', () => {
  for (const refused of ['20.20.2', '22.11.9', '22.0.0', '18.19.1', 'v21.7.3']) {
    expect(nodeVersionProblem(refused), refused).toMatch(/^sceneworks needs Node\.js >= 22\.12, but this is Node\.js .+: install Node\.js 24 LTS .+$/);
  }
  for (const accepted of ['22.12.0', '22.21.1', '23.0.0', '24.21.0', '30.1.0']) {
    expect(nodeVersionProblem(accepted), accepted).toBeUndefined();
  }
});

it('an old Node running the check prints one line that says what to install, and exits 1', () => {
  const node = oldNode();
  if (node) {
    // The real thing: the script must parse and run on the old Node itself.
    const run = spawnSync(node, [CHECK], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^sceneworks needs Node\.js >= 22\.12, but this is Node\.js 20\.\d+\.\d+: install Node\.js 24 LTS/);
  } else {
    // No old Node on this machine: the message it would print.
    expect(nodeVersionProblem('20.20.2')?.split('\n')).toHaveLength(1);
  }
});

it('the Node running the tests passes the check silently', () => {
  const run = spawnSync(process.execPath, [CHECK], { encoding: 'utf8' });
  expect(run.status).toBe(0);
  expect(run.stdout + run.stderr).toBe('');
});

it('every npm script that runs the service code checks the Node version first', () => {
  const { scripts } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { scripts: Record<string, string> };
  for (const name of ['start', 'test', 'migrate', 'backfill', 'bench']) {
    expect(scripts[name], name).toMatch(/^node scripts\/check-node\.cjs && \S/);
  }
  // `.ci/run` appends arguments (`npm test -- --reporter=…`): they must reach vitest, the last command.
  expect(scripts.test).toMatch(/&& vitest run [^&|;]*$/);
});
