import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rehostLegacyImages } from '../../src/backfill/rehost.ts';
import { anyAddress, createOutboundFetch, publicAddressesOnly, RefusedAddressError } from '../../src/net/outbound.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * A legacy row's image URL is fetched by the service (downloads, the archive, the rehost
 * backfill). By default it may reach public addresses only: not loopback, a private network,
 * or a cloud's metadata address, whether the URL names the address, a host that resolves to
 * it, or a redirect to either. A refused URL never reaches its server.
 */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==', 'base64');
let server: Server;
let hits: string[];
let port: number;
beforeAll(async () => {
  hits = [];
  server = createServer((req, res) => {
    hits.push(`${req.headers.host}${req.url}`);
    if (req.url?.startsWith('/redirect')) {
      res.writeHead(302, { location: new URL(req.url, 'http://x').searchParams.get('to')! }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('publicAddressesOnly', () => {
  it.each([
    ['127.0.0.1'], ['127.9.9.9'], ['10.1.2.3'], ['172.16.0.1'], ['192.168.1.1'], ['169.254.169.254'], ['100.64.0.1'], ['0.0.0.0'],
    ['224.0.0.1'], ['255.255.255.255'], ['::1'], ['::'], ['fe80::1'], ['fc00::1'], ['fd12:3456::1'], ['::ffff:127.0.0.1'], ['::ffff:10.0.0.1'],
    ['not an address'],
  ])('refuses %s', (address) => expect(publicAddressesOnly(address)).toBe(false));
  it.each([['8.8.8.8'], ['151.101.1.69'], ['2606:4700:4700::1111'], ['::ffff:8.8.8.8']])('allows %s', (address) => expect(publicAddressesOnly(address)).toBe(true));
});

describe('createOutboundFetch', () => {
  const publicOnly = createOutboundFetch(publicAddressesOnly);

  it('refuses an address written in the URL, in any of its spellings, before connecting', async () => {
    hits.length = 0;
    for (const host of ['127.0.0.1', '127.1', '2130706433', '0x7f000001', '[::1]', '[::ffff:127.0.0.1]']) {
      await expect(publicOnly(`http://${host}:${port}/a.png`), host).rejects.toBeInstanceOf(RefusedAddressError);
    }
    expect(hits).toEqual([]);
  });

  it('refuses a host name that resolves to a refused address, when connecting', async () => {
    hits.length = 0;
    const err = await publicOnly(`http://localhost:${port}/a.png`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError); // fetch's own failure, caused by the refusal
    expect(((err as Error).cause as Error)).toBeInstanceOf(RefusedAddressError);
    expect(hits).toEqual([]);
  });

  it('checks every hop of a redirect', async () => {
    // 127.0.0.1 stands in for a public address here; 127.0.0.2 (the same server) for a private one.
    const only1 = createOutboundFetch((address) => address === '127.0.0.1');
    hits.length = 0;
    const ok = await only1(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${port}/b.png`)}`);
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer())).toEqual(PNG);
    hits.length = 0;
    await expect(only1(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://127.0.0.2:${port}/c.png`)}`)).rejects.toBeInstanceOf(RefusedAddressError);
    expect(hits).toEqual([`127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://127.0.0.2:${port}/c.png`)}`]);
    await expect(only1(`http://127.0.0.1:${port}/redirect?to=${encodeURIComponent('file:///etc/passwd')}`)).rejects.toThrow(/only http and https/);
  });

  it('anyAddress (LEGACY_FETCH_ALLOW_PRIVATE=true) fetches from loopback', async () => {
    const res = await createOutboundFetch(anyAddress)(`http://localhost:${port}/d.png`);
    expect(res.status).toBe(200);
  });
});

describe('through the service, with the default policy', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ LEGACY_FETCH_ALLOW_PRIVATE: 'false' }, { runner: false });
  });
  afterAll(() => t.close());

  it('a legacy image on loopback is a 404 to download, missing from the archive, and unfetchable to the rehost backfill; its server hears nothing', async () => {
    const url = `http://127.0.0.1:${port}/legacy.png`;
    const [project] = await t.db.sql<{ id: string }[]>`
      INSERT INTO content_creation_requests (user_id, title, generated_output) VALUES (${t.deps.singleOwner.ownerId}, 'legacy', ${t.db.sql.json({ scenes: [{ prompt: 'p' }] })}) RETURNING id`;
    const [image] = await t.db.sql<{ id: string }[]>`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, owner_id, image_url, details)
      VALUES (${project!.id}, 1, 0, 'succeeded', ${t.deps.singleOwner.ownerId}, ${url}, ${t.db.sql.json({ source: 'legacy' })}) RETURNING id`;
    // A name that resolves to loopback is refused at connection time, deeper in the fetch's causes.
    await t.db.sql`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, owner_id, image_url, details)
      VALUES (${project!.id}, 1, 1, 'succeeded', ${t.deps.singleOwner.ownerId}, ${`http://localhost:${port}/legacy.png`}, ${t.db.sql.json({ source: 'legacy' })})`;
    hits.length = 0;
    const download = await t.call('GET', `/images/${image!.id}/download`);
    expect(download.status).toBe(404);
    const archive = await t.app.request(`/projects/${project!.id}/archive`);
    expect(archive.status).toBe(200);
    await archive.arrayBuffer();
    expect(archive.headers.get('content-type')).toContain('zip');
    const summary = await rehostLegacyImages(t.deps.db.sql, t.deps.store, { concurrency: 1, timeoutMs: 2_000, batchSize: 10, fetch: t.deps.legacyFetch, projectId: project!.id });
    expect(summary.failedByReason).toMatchObject({ refused_address: 2, network: 0 });
    expect(hits).toEqual([]);
  });
});
