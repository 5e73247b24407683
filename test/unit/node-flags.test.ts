import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { SERVICE_NODE_FLAGS } from '../../src/node-flags.ts';

/** The service runs with the same V8 flags however it is started, and the benches measure it with them. */
it('npm start, the Dockerfile and the benches start the service with SERVICE_NODE_FLAGS', () => {
  const root = new URL('../../', import.meta.url);
  const start = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
  expect(start).toContain(`node ${SERVICE_NODE_FLAGS.join(' ')} src/main.ts`);
  const cmd = readFileSync(new URL('Dockerfile', root), 'utf8').split('\n').find((line) => line.startsWith('CMD '))!;
  expect(JSON.parse(cmd.slice(4))).toEqual(['node', ...SERVICE_NODE_FLAGS, 'src/main.ts']);
  expect(readFileSync(new URL('scripts/bench/archive.ts', root), 'utf8')).toContain('spawn(process.execPath, [...SERVICE_NODE_FLAGS, MAIN]');
});
