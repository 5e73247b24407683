import { spawn, type ChildProcess } from 'node:child_process';
import { SERVICE_NODE_FLAGS } from '../../src/node-flags.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { freePort } from '../../src/db/database.ts';
import { judge, type Measurement } from './report.ts';
import { createBenchDatabase, type BenchPostgres } from './service.ts';

/**
 * 7. GET /projects/:id/archive of a finished project of 1,000 images: the service's memory while
 * it streams the ZIP, and the ZIP's throughput. The service runs as its own process (node
 * src/main.ts, local store), so its resident memory is its own, not this bench's: idle (started,
 * one project read) against the peak while a client here reads the whole archive over HTTP.
 * The peak is the kernel's (VmHWM, reset just before the request through /proc/<pid>/clear_refs)
 * and a 10 ms sampling of VmRSS, whichever is higher. Images are rows and files written directly
 * (a real image's size, random bytes), so the run measures the archive, not the provider.
 * Throughput is set against reading the same files straight from disk in this process.
 */

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const OWNER = '00000000-0000-4000-8000-000000000001';
const SCENES = 200;
const PER_SCENE = 5;
/** A generated 1024x1024 PNG is 1 to 2 MB. */
const IMAGE_BYTES = 1024 * 1024;
/** The bar: peak RSS within 50 MB of idle. */
const RSS_BUDGET_MB = 50;
const MB = 1024 * 1024;

export async function measureArchive(pg: BenchPostgres, progress: (message: string) => void): Promise<Measurement[]> {
  const database = await createBenchDatabase(pg, 'archive');
  const url = database.url;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-bench-archive-'));
  let service: Service | undefined;
  try {
    service = await startServiceProcess(url, dataDir);
    progress(`archive: writing ${(SCENES * PER_SCENE).toLocaleString('en-US')} images of ${IMAGE_BYTES / MB} MiB (rows and files)`);
    const { projectId, files } = await fillProject(url, dataDir, service.baseUrl);
    const rawMBps = await readFilesMBps(files);

    // Idle: started, and one read of the project (its code paths loaded), then left alone.
    const warm = await fetch(`${service.baseUrl}/projects/${projectId}`);
    if (warm.status !== 200) throw new Error(`GET /projects/${projectId} answered ${warm.status}`);
    await warm.arrayBuffer();
    await new Promise((r) => setTimeout(r, 1000));
    const idle = await rssOf(service.pid);
    await writeFile(`/proc/${service.pid}/clear_refs`, '5').catch(() => {}); // resets VmHWM (Linux)

    progress('archive: GET /projects/:id/archive, the client reading it to the end');
    let sampledPeak = idle.rss;
    const sampler = setInterval(() => {
      void rssOf(service!.pid).then((m) => (sampledPeak = Math.max(sampledPeak, m.rss)), () => {});
    }, 10);
    const started = performance.now();
    const archive = await readArchive(`${service.baseUrl}/projects/${projectId}/archive`);
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const after = await rssOf(service.pid);
    const peak = Math.max(sampledPeak, after.hwm);
    if (archive.entries !== files.length + 1) throw new Error(`the archive lists ${archive.entries} entries, not ${files.length + 1}`);

    const growthMB = (peak - idle.rss) / MB;
    const archiveMBps = archive.bytes / MB / seconds;
    const common = { images: files.length, 'image size': `${IMAGE_BYTES / MB} MiB`, 'archive size': `${(archive.bytes / MB).toFixed(0)} MiB` };
    return [
      judge({
        name: 'GET /projects/:id/archive, service RSS growth (peak − idle)',
        unit: 'MB',
        measured: growthMB,
        baseline: { label: 'goal: at most', value: RSS_BUDGET_MB },
        ratio: RSS_BUDGET_MB / Math.max(growthMB, 0.1),
        target: { of: 'ratio', min: 1 },
        details: {
          ...common,
          'idle RSS': `${(idle.rss / MB).toFixed(1)} MB`,
          'peak RSS': `${(peak / MB).toFixed(1)} MB`,
          'peak by VmHWM': `${(after.hwm / MB).toFixed(1)} MB`,
          'peak by 10 ms sampling': `${(sampledPeak / MB).toFixed(1)} MB`,
          process: 'node src/main.ts (child), local store, client in the bench process',
        },
      }),
      judge({
        name: 'GET /projects/:id/archive, throughput',
        unit: 'MB/s',
        measured: archiveMBps,
        baseline: { label: 'reading the same files from disk', value: rawMBps },
        ratio: archiveMBps / rawMBps,
        // Reading, CRC-32, ZIP framing, HTTP over loopback, the client, and the collections that
        // keep memory flat (src/memory/dead-buffers.ts): at most 10 times a bare read.
        target: { of: 'ratio', min: 0.1 },
        details: { ...common, seconds: seconds.toFixed(2) },
      }),
    ];
  } finally {
    await service?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await database.drop().catch(() => {});
  }
}

export interface Service {
  pid: number;
  baseUrl: string;
  stop(): Promise<void>;
}

/** The real service, `node src/main.ts`, in a process of its own; ready once /readyz answers. */
export async function startServiceProcess(databaseUrl: string, dataDir: string, env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...SERVICE_NODE_FLAGS, MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      LOG_LEVEL: 'warn',
      STORAGE_PUBLIC: 'true',
      DATABASE_POOL_SIZE: '10',
      // To measure the service under other V8 settings (e.g. --max-semi-space-size) without the bench process itself getting them.
      ...(process.env.BENCH_SERVICE_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_SERVICE_NODE_OPTIONS } : {}),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the service exited before it was ready: ${stderr}`);
    const ready = await fetch(`${baseUrl}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) return { pid: child.pid!, baseUrl, stop };
    if (i > 600) {
      await stop();
      throw new Error(`the service was not ready within 60 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A finished project of SCENES x PER_SCENE images: the project row, one succeeded row per slot, one file per row. */
async function fillProject(databaseUrl: string, dataDir: string, publicBaseUrl: string): Promise<{ projectId: string; files: string[] }> {
  const projectId = randomUUID();
  const bytes = randomBytes(IMAGE_BYTES);
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const slots = Array.from({ length: SCENES * PER_SCENE }, (_, i) => ({
    scene: Math.floor(i / PER_SCENE) + 1,
    image: i % PER_SCENE,
    key: `projects/${projectId}/scene-${Math.floor(i / PER_SCENE) + 1}/image-${i % PER_SCENE}-g1-a1.png`,
  }));
  try {
    const scenes = Array.from({ length: SCENES }, (_, i) => ({ prompt: `scene ${i + 1} of the archive bench`, index: i + 1 }));
    const settings = { imagesPerScene: PER_SCENE, aspectRatio: '1:1', style: null, provider: 'local', model: null };
    await sql`
      INSERT INTO content_creation_requests (id, user_id, title, generated_output, settings)
      VALUES (${projectId}, ${OWNER}, 'Archive bench', ${sql.json({ scenes })}, ${sql.json(settings)})`;
    await sql`
      INSERT INTO generated_images (content_creation_request_id, scene_index, image_index, status, owner_id, prompt, image_prompt,
                                    width, height, mime_type, bytes, storage_key, image_url, attempts, generation)
      SELECT ${projectId}, s.scene, s.image, 'succeeded', ${OWNER}, 'scene ' || s.scene || ' of the archive bench',
             'scene ' || s.scene || ' of the archive bench', 1024, 1024, 'image/png', ${IMAGE_BYTES}, s.key, ${publicBaseUrl} || '/files/' || s.key, 1, 1
      FROM unnest(${slots.map((s) => s.scene)}::int[], ${slots.map((s) => s.image)}::int[], ${slots.map((s) => s.key)}::text[]) AS s(scene, image, key)`;
  } finally {
    await sql.end();
  }
  const files = slots.map((s) => path.join(dataDir, 'files', s.key));
  for (const file of files) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
  }
  return { projectId, files };
}

/** Reading the files one after the other, as the archive does, without HTTP or ZIP: the baseline. */
async function readFilesMBps(files: readonly string[]): Promise<number> {
  const started = performance.now();
  let total = 0;
  for (const file of files) {
    for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) total += (chunk as Buffer).length;
  }
  return total / MB / ((performance.now() - started) / 1000);
}

/**
 * Reads the archive to its end, keeping only its byte count and its last 64 KiB + 22 bytes (the end
 * of central directory record and, for a ZIP64, its locator), whose entry count it returns.
 */
async function readArchive(url: string): Promise<{ bytes: number; entries: number }> {
  const res = await fetch(url);
  if (res.status !== 200 || !res.body) throw new Error(`GET archive answered ${res.status}: ${await res.text()}`);
  let bytes = 0;
  let tail = Buffer.alloc(0);
  for await (const chunk of res.body) {
    bytes += chunk.byteLength;
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > 2 * 65_558) tail = tail.subarray(tail.length - 65_558);
  }
  const end = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('the archive has no end of central directory record');
  const count = tail.readUInt16LE(end + 10);
  if (count !== 0xffff) return { bytes, entries: count };
  const zip64 = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
  if (zip64 < 0) throw new Error('the archive says ZIP64 but has no ZIP64 end record');
  return { bytes, entries: Number(tail.readBigUInt64LE(zip64 + 32)) };
}

/** Resident memory now and its high-water mark, in bytes, from /proc (Linux). */
export async function rssOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}
