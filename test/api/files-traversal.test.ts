import { writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/http/server.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * GET /files must never leave the store's folder. Requests go over a raw socket, so the path
 * reaches the server exactly as written (fetch and app.request normalise '..' away before the
 * service ever sees it), and a real file waits just outside the folder to be leaked.
 */
let t: TestApp;
let server: Server;
let port: number;
const SECRET = 'the secret beside the store';

beforeAll(async () => {
  t = await startTestApp({}, { runner: false });
  // The store's root is DATA_DIR/files; these sit one and two levels above it.
  await writeFile(path.join(t.dataDir, 'secret.png'), SECRET);
  await writeFile(path.join(t.dataDir, '..', `${path.basename(t.dataDir)}-secret.png`), SECRET);
  server = await startServer(t.app, { port: 0, hostname: '127.0.0.1' });
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await t.close();
});

function rawGet(target: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => resolve({ status: Number(text.slice(9, 12)), text }));
    socket.on('error', reject);
  });
}

describe('GET /files never leaves its folder', () => {
  it.each([
    '/files/../secret.png',
    '/files/..%2fsecret.png',
    '/files/..%2Fsecret.png',
    '/files/%2e%2e%2fsecret.png',
    '/files/%2e%2e/secret.png',
    '/files/.%2e/secret.png',
    '/files/projects/..%2f..%2fsecret.png',
    '/files/..%5csecret.png',
    '/files/%2fetc%2fpasswd',
    '/files/....//secret.png',
  ])('%s is a 404 with the contract body, and leaks nothing', async (target) => {
    const res = await rawGet(target);
    expect(res.text).not.toContain(SECRET);
    expect(res.status).toBe(404);
    expect(res.text).toContain('"code":"NOT_FOUND"');
  });

  it('two levels up, by a key that names the sibling folder', async () => {
    const sibling = `${path.basename(t.dataDir)}-secret.png`;
    for (const target of [`/files/..%2f..%2f${sibling}`, `/files/%2e%2e%2f%2e%2e%2f${sibling}`]) {
      const res = await rawGet(target);
      expect(res.text).not.toContain(SECRET);
      expect(res.status).toBe(404);
    }
  });

  it('a key with a dot segment is refused even when it resolves to a real object inside the folder: one object, one key', async () => {
    await t.deps.localStore!.put('audit/real.png', new TextEncoder().encode('real'), 'image/png');
    expect((await rawGet('/files/audit/real.png')).status).toBe(200);
    // ('%2e%2e/' alone is a dot segment to the URL parser, which resolves it before the service sees it.)
    for (const target of ['/files/audit/..%2faudit/real.png', '/files/audit/%2e%2e%2faudit/real.png', '/files/audit/.%2freal.png']) {
      const res = await rawGet(target);
      expect(res.status, target).toBe(404);
      expect(res.text).toContain('"code":"NOT_FOUND"');
    }
    for (const key of ['audit/../audit/real.png', 'audit/./real.png', 'audit//real.png']) expect(await t.deps.localStore!.open(key), key).toBeUndefined();
  });

  it('the store itself refuses such keys', async () => {
    const store = t.deps.localStore!;
    for (const key of ['../secret.png', 'projects/../../secret.png', '/etc/passwd', '..\\secret.png', './secret.png']) {
      expect(await store.open(key), key).toBeUndefined();
    }
  });
});
