/**
 * Issue 12, items 4 and 5: a 10,000-slot run watched by 200 event-stream clients, against the
 * same run watched by none, each with the service in a process of its own (`node src/main.ts`,
 * default settings, the OpenAI adapter against the loopback fake of its API, answering at once).
 *
 * - Throughput: slots per second from the first POST to the last success, 200 watchers / none.
 * - Memory: the service's peak RSS during the run (the kernel's VmHWM, reset after start, and a
 *   10 ms sampling of VmRSS, whichever is higher), with 200 watchers.
 * Watchers connect right after the POSTs, spread over the run's projects, read every event and
 * keep nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { startFakeOpenAI } from '../../test/fakes/openai.ts';
import { rssOf, startServiceProcess } from './archive.ts';
import { judge, type Measurement } from './report.ts';
import { createBenchDatabase, type BenchPostgres } from './service.ts';

const SLOTS = 10_000;
/** The largest project the API takes is 200 scenes x 8 images. */
const SCENES = 200;
const PER_SCENE = 8;
const WATCHERS = 200;
const RSS_GOAL_MB = 300;
const MB = 1024 * 1024;

interface Run {
  seconds: number;
  /** CPU seconds this process (the clients, the fake, the polling) used during the run. */
  clientCpu: number;
  peakMB: number;
  idleMB: number;
  events: number;
}

export async function measureWatchers(pg: BenchPostgres, progress: (message: string) => void, largeSlots: number): Promise<Measurement[]> {
  const fake = await startFakeOpenAI();
  try {
    progress(`watchers: ${SLOTS.toLocaleString('en-US')} slots, no event stream`);
    const none = await run(pg, fake, 0, SLOTS);
    progress(`watchers: ${SLOTS.toLocaleString('en-US')} slots, ${WATCHERS} event streams`);
    const watched = await run(pg, fake, WATCHERS, SLOTS);
    progress(`watchers: ${largeSlots.toLocaleString('en-US')} slots, no event stream (memory at scale)`);
    const large = largeSlots > 0 ? await run(pg, fake, 0, largeSlots) : undefined;
    const details = {
      run: `${SLOTS.toLocaleString('en-US')} slots in ${Math.ceil(SLOTS / (SCENES * PER_SCENE))} projects of up to ${SCENES} x ${PER_SCENE}, default settings, OpenAI adapter against the loopback fake (no delay)`,
      unwatched: `${none.seconds.toFixed(1)} s, peak RSS ${none.peakMB.toFixed(0)} MiB (idle ${none.idleMB.toFixed(0)} MiB)`,
      watched: `${watched.seconds.toFixed(1)} s, peak RSS ${watched.peakMB.toFixed(0)} MiB (idle ${watched.idleMB.toFixed(0)} MiB), ${watched.events.toLocaleString('en-US')} events received by the ${WATCHERS} clients`,
      'bench process CPU (fake provider, clients)': `${none.clientCpu.toFixed(1)} s unwatched, ${watched.clientCpu.toFixed(1)} s watched`,
    };
    return [
      judge({
        name: `generation throughput with ${WATCHERS} event streams open`,
        unit: 'slots/s',
        measured: SLOTS / watched.seconds,
        baseline: { label: 'the same run with none', value: SLOTS / none.seconds },
        ratio: none.seconds / watched.seconds,
        target: { of: 'ratio', min: 0.9 },
        details,
      }),
      judge({
        name: `service peak RSS, ${SLOTS.toLocaleString('en-US')} slots with ${WATCHERS} event streams`,
        unit: 'MiB',
        measured: watched.peakMB,
        baseline: { label: 'goal: at most', value: RSS_GOAL_MB },
        ratio: RSS_GOAL_MB / watched.peakMB,
        target: { of: 'ratio', min: 1 },
        details: {},
      }),
      ...(large
        ? [
            judge({
              // Nothing in the process may grow with the backlog or a project's size: ten times
              // the slots (all POSTed before the run) peaks where the 10,000-slot run did.
              name: `service peak RSS, ${largeSlots.toLocaleString('en-US')} slots, no stream`,
              unit: 'MiB',
              measured: large.peakMB,
              baseline: { label: `the same with ${SLOTS.toLocaleString('en-US')} slots`, value: none.peakMB },
              ratio: none.peakMB / large.peakMB,
              target: { of: 'ratio', min: 0.8 },
              details: { run: `${largeSlots.toLocaleString('en-US')} slots in ${Math.ceil(largeSlots / (SCENES * PER_SCENE))} projects, ${large.seconds.toFixed(1)} s (${(largeSlots / large.seconds).toFixed(0)} slots/s), idle ${large.idleMB.toFixed(0)} MiB` },
            }),
          ]
        : []),
    ];
  } finally {
    await fake.close();
  }
}

async function run(pg: BenchPostgres, fake: Awaited<ReturnType<typeof startFakeOpenAI>>, watchers: number, slots: number): Promise<Run> {
  const database = await createBenchDatabase(pg, `watchers_${watchers}`);
  const url = database.url;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-bench-watchers-'));
  const service = await startServiceProcess(url, dataDir, {
    IMAGE_PROVIDER: 'openai',
    OPENAI_API_KEY: fake.apiKey,
    OPENAI_BASE_URL: fake.url,
    MAX_PENDING_SLOTS_PER_OWNER: String(slots * 2),
    RATE_LIMIT_PER_MIN: '100000',
  });
  const watch = postgres(url, { max: 1, onnotice: () => {} });
  const streams: Promise<number>[] = [];
  try {
    const idle = await rssOf(service.pid);
    await writeFile(`/proc/${service.pid}/clear_refs`, '5').catch(() => {}); // resets VmHWM (Linux)
    let sampled = idle.rss;
    const sampler = setInterval(() => {
      void rssOf(service.pid).then((m) => (sampled = Math.max(sampled, m.rss)), () => {});
    }, 10);
    const started = performance.now();
    const cpu = process.cpuUsage();
    const ids: string[] = [];
    for (let left = slots; left > 0; left -= SCENES * PER_SCENE) {
      const inProject = Math.min(left, SCENES * PER_SCENE);
      const res = await fetch(`${service.baseUrl}/projects`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          title: 'watched',
          scenes: Array.from({ length: inProject / PER_SCENE }, (_, i) => ({ prompt: `scene ${i + 1}: a lighthouse at dusk` })),
          imagesPerScene: PER_SCENE,
        }),
      });
      if (res.status !== 202) throw new Error(`POST /projects answered ${res.status}: ${await res.text()}`);
      ids.push(((await res.json()) as { id: string }).id);
    }
    for (let i = 0; i < watchers; i++) streams.push(follow(`${service.baseUrl}/projects/${ids[i % ids.length]}/events`));
    for (;;) {
      const [row] = await watch<{ done: number; failed: number }[]>`
        SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed
        FROM generated_images`;
      if (row!.failed > 0) throw new Error(`${row!.failed} slot(s) failed`);
      if (row!.done === slots) break;
      if (performance.now() - started > 60 * slots) throw new Error(`only ${row!.done} of ${slots} slots done after ${(60 * slots / 60_000).toFixed(0)} minutes`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    const events = (await Promise.all(streams)).reduce((a, b) => a + b, 0);
    clearInterval(sampler);
    const after = await rssOf(service.pid);
    const used = process.cpuUsage(cpu);
    return { seconds, clientCpu: (used.user + used.system) / 1e6, peakMB: Math.max(sampled, after.hwm) / MB, idleMB: idle.rss / MB, events };
  } finally {
    await watch.end({ timeout: 5 });
    await service.stop();
    await rm(dataDir, { recursive: true, force: true });
    await database.drop().catch(() => {});
  }
}

/**
 * Reads one event stream to its end (the server closes it after `done`); returns the events
 * seen. node:http and a byte search, no decoding: the 200 clients share these 2 cores with
 * the service, and must cost it as little as a client can.
 */
function follow(url: string): Promise<number> {
  const marker = Buffer.from('\nevent:');
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET ${url} answered ${res.statusCode}`));
      let events = 0;
      let tail: Buffer = Buffer.alloc(0);
      res.on('data', (chunk: Buffer) => {
        const data = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
        for (let i = data.indexOf(marker); i !== -1; i = data.indexOf(marker, i + marker.length)) events++;
        tail = data.subarray(Math.max(0, data.length - marker.length + 1));
      });
      res.on('end', () => resolve(events));
      res.on('error', reject);
    }).on('error', reject);
  });
}
