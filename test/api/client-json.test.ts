import { randomUUID } from 'node:crypto';
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader } from '@zip.js/zip.js/index-native.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({}, { runner: false });
});
afterAll(() => t.close());

/** JSON with keys sorted at every depth: jsonb keeps keys and values, not their order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record).sort().map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The entries of a ZIP by name. */
async function unzip(zip: Uint8Array): Promise<Map<string, Buffer>> {
  const reader = new ZipReader(new Uint8ArrayReader(zip), { useWebWorkers: false });
  const entries = new Map<string, Buffer>();
  for (const entry of await reader.getEntries()) if (!entry.directory) entries.set(entry.filename, Buffer.from(await entry.getData(new Uint8ArrayWriter())));
  await reader.close();
  return entries;
}

async function raw(method: string, path: string, text?: string) {
  const res = await t.app.request(path, { method, body: text, headers: text === undefined ? {} : { 'content-type': 'application/json' } });
  const body = await res.text();
  return { status: res.status, text: body, json: JSON.parse(body) as any };
}

// Written as JSON text: in a JS object literal "__proto__" would set the prototype, not a key.
const AWKWARD = `{"campaign_id":"q4","":"empty key","__proto__":{"polluted":true,"inner_key":1},"naïve ключ 🎬":"unicode",
  "trailing_":"underscore","_leading":"x","a__b":"double","CamelCase":"kept","kebab-key":"k",
  "nested_level":{"deeper_key":{"__proto__":{"x_y":[{"":0,"z_":null,"__proto__":[]}]},"end_":"e"}}}`;

describe('client JSON comes back exactly as sent, key for key', () => {
  it('metadata and scene fields with snake_case, empty, __proto__, unicode and trailing-underscore keys at every depth', async () => {
    const awkward = JSON.parse(AWKWARD);
    const body = `{"title":"keys","metadata":${AWKWARD},
      "scenes":[{"prompt":"one","narration_text":"n","extra":${AWKWARD}},{"prompt":"two","index":7,"__proto__":{"shot_list":["a_b"]},"":1}]}`;
    const created = await raw('POST', '/projects', body);
    expect(created.status).toBe(202);
    const sent = JSON.parse(body);

    const id = created.json.id;
    const answers = [
      created.json,
      (await raw('GET', `/projects/${id}`)).json,
      (await raw('GET', `/project/${id}`)).json,
      // Every other answer that carries the project: the writes, and the archive's project.json.
      (await raw('POST', `/projects/${id}/generate`)).json,
      (await raw('POST', `/projects/${id}/scenes/7/regenerate`)).json,
      (await raw('PATCH', `/projects/${id}/scenes/7`, '{}')).json,
      JSON.parse((await unzip(new Uint8Array(await (await t.app.request(`/projects/${id}/archive`)).arrayBuffer()))).get('project.json')!.toString()),
    ];
    for (const answer of answers) {
      expect(canonical(answer.metadata)).toBe(canonical(awkward));
      const scenes = answer.generatedOutput.scenes.map(({ imageUrls, images, index, staleImages, ...fields }: any) => fields);
      // index is added to every scene: the first was sent without one.
      const sentScenes = sent.scenes.map(({ index, ...fields }: any) => fields);
      expect(scenes.map(canonical)).toEqual(sentScenes.map(canonical));
      expect(answer.generatedOutput.scenes.map((s: any) => s.index)).toEqual([1, 7]);
      expect(Object.getPrototypeOf(answer.metadata)).toBe(Object.prototype);
    }
    // Stored verbatim too.
    const [row] = await t.db.sql<{ metadata: string; output: string }[]>`
      SELECT metadata::text AS metadata, generated_output::text AS output FROM content_creation_requests WHERE id = ${created.json.id}`;
    expect(canonical(JSON.parse(row!.metadata))).toBe(canonical(awkward));
    expect(canonical(JSON.parse(row!.output))).toBe(canonical({ scenes: sent.scenes }));
  });

  it('top-level fields of a stored generated_output other than scenes, whatever their keys', async () => {
    const id = randomUUID();
    const output = JSON.parse(`{"render_settings":{"frame_rate_":24,"":{"__proto__":1}},"scenes":[{"prompt":"p","voice_over":"v"}]}`);
    await t.db.sql`INSERT INTO content_creation_requests (id, user_id, generated_output) VALUES (${id}, ${t.deps.singleOwner.ownerId}, ${t.db.sql.json(output)})`;
    const answer = (await raw('GET', `/projects/${id}`)).json;
    const { scenes, ...top } = answer.generatedOutput;
    const { scenes: sentScenes, ...sentTop } = output;
    expect(canonical(top)).toBe(canonical(sentTop));
    expect(scenes[0].voice_over).toBe('v');
  });
});

function expectBadRequest(res: { status: number; json: any }, path?: string) {
  expect(res.status).toBe(400);
  expect(res.json.error.code).toBe('VALIDATION_FAILED');
  if (path !== undefined) expect(res.json.error.details.map((d: any) => d.path.map(String).join('.'))).toContain(path);
}

describe('input PostgreSQL or JSON cannot keep is a 400 naming where it is, never a 500', () => {
  const cases: [string, string, string][] = [
    ['NUL in a prompt', '{"scenes":[{"prompt":"a\\u0000b"}]}', 'scenes.0.prompt'],
    ['NUL in the title', '{"title":"t\\u0000","scenes":[{"prompt":"p"}]}', 'title'],
    ['NUL in the style', '{"style":"\\u0000","scenes":[{"prompt":"p"}]}', 'style'],
    ['NUL in the model', '{"model":"m\\u0000","scenes":[{"prompt":"p"}]}', 'model'],
    ['NUL in a metadata value', '{"metadata":{"a":{"b":"\\u0000"}},"scenes":[{"prompt":"p"}]}', 'metadata.a.b'],
    ['NUL in a metadata key', '{"metadata":{"k\\u0000":1},"scenes":[{"prompt":"p"}]}', 'metadata.k\u0000'],
    ['NUL in a scene field', '{"scenes":[{"prompt":"p","shots":["\\u0000"]}]}', 'scenes.0.shots.0'],
    ['a lone surrogate in metadata', '{"metadata":{"a":"\\ud800"},"scenes":[{"prompt":"p"}]}', 'metadata.a'],
    ['a lone surrogate in the title', '{"title":"x\\udc00","scenes":[{"prompt":"p"}]}', 'title'],
    ['a lone surrogate in a key', '{"metadata":{"\\ud800":1},"scenes":[{"prompt":"p"}]}', 'metadata.\ud800'],
    ['a number that is Infinity as a double', '{"metadata":{"big":1e400},"scenes":[{"prompt":"p"}]}', 'metadata.big'],
    ['a number with more digits than a double keeps', '{"scenes":[{"prompt":"p","id":12345678901234567890}]}', 'scenes.0.id'],
    ['a scene index past 2^31-1', '{"scenes":[{"prompt":"p","index":2147483648}]}', 'scenes.0.index'],
    // Deep enough for the limit, not for any stack: what refuses it is the limit itself.
    ['metadata nested 100 deep', `{"metadata":{"a":${'['.repeat(100)}${']'.repeat(100)}},"scenes":[{"prompt":"p"}]}`, ''],
    ['metadata nested 5,000 deep', `{"metadata":{"a":${'['.repeat(5000)}${']'.repeat(5000)}},"scenes":[{"prompt":"p"}]}`, ''],
    ['a scene field nested 100,000 deep', `{"scenes":[{"prompt":"p","x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}`, ''],
  ];
  for (const [name, body, path] of cases) {
    it(`POST /projects: ${name}`, async () => {
      const before = await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`;
      expectBadRequest(await raw('POST', '/projects', body), path || undefined);
      expect(await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`).toEqual(before);
    });
  }

  it('the largest scene index is accepted, and so are numbers that round-trip (0.10, 1E2, -0)', async () => {
    const res = await raw('POST', '/projects', '{"scenes":[{"prompt":"p","index":2147483647,"a":0.10,"b":1E2,"c":-0,"d":1e21}]}');
    expect(res.status).toBe(202);
    expect(res.json.generatedOutput.scenes[0]).toMatchObject({ index: 2147483647, a: 0.1, b: 100, c: 0, d: 1e21 });
  });

  it('regenerate: NUL or a lone surrogate in the new prompt', async () => {
    const created = await raw('POST', '/projects', '{"scenes":[{"prompt":"p"}]}');
    expectBadRequest(await raw('POST', `/projects/${created.json.id}/scenes/1/regenerate`, '{"prompt":"x\\u0000"}'), 'prompt');
    expectBadRequest(await raw('POST', `/projects/${created.json.id}/scenes/1/regenerate`, '{"prompt":"x\\ud83c"}'), 'prompt');
    expect((await raw('GET', `/projects/${created.json.id}`)).json.generatedOutput.scenes[0].prompt).toBe('p');
  });

  it('bytes that are not UTF-8 (a lone surrogate sent as bytes, a stray byte): a 400, never stored as U+FFFD', async () => {
    const before = await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`;
    for (const bad of [[0xed, 0xa0, 0x80], [0xff], [0xc3]]) {
      const body = Buffer.concat([Buffer.from('{"title":"'), Buffer.from(bad), Buffer.from('","scenes":[{"prompt":"p"}]}')]);
      const res = await t.app.request('/projects', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      const json = await res.json();
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(json.error).toMatchObject({ code: 'VALIDATION_FAILED', message: 'the request body is not valid UTF-8' });
    }
    expect(await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`).toEqual(before);
    // A BOM and every plane are UTF-8: accepted.
    const ok = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"title":"é 🎬 \u{10FFFF}","scenes":[{"prompt":"p"}]}')]);
    const res = await t.app.request('/projects', { method: 'POST', body: ok, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
    expect((await res.json()).title).toBe('é 🎬 \u{10FFFF}');
  });

  it('every other route that takes a body refuses the same input, never a 500', async () => {
    const created = await raw('POST', '/projects', '{"scenes":[{"prompt":"p","shot":{"lens":35}}]}');
    const id = created.json.id;
    const imageId = created.json.generatedOutput.scenes[0].images[0].id;
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const values: [string, string][] = [
      ['NUL', '"a\\u0000b"'],
      ['a lone surrogate', '"\\udfff"'],
      ['1e400', '1e400'],
      ['nested 100 deep', deep(100)],
      ['nested 5,000 deep', deep(5000)],
    ];
    const bodies = (v: string): [string, string, string][] => [
      ['PATCH', `/projects/${id}/scenes/1`, `{"shot":{"notes":${v}}}`],
      ['PATCH', `/projects/${id}/scenes/1`, `{"prompt":${v}}`],
      ['POST', `/projects/${id}/scenes/1/regenerate`, `{"prompt":${v}}`],
      ['PATCH', `/images/${imageId}`, `{"favorite":${v}}`],
      ['POST', '/projects', `{"scenes":[{"prompt":"p"}],"webhook":{"url":${v}}}`],
      ['POST', '/projects', `{"scenes":[{"prompt":"p"}],"providers":[${v}]}`],
    ];
    const keys: [string, string, string][] = [
      ['PATCH', `/projects/${id}/scenes/1`, '{"k\\u0000":1}'],
      ['PATCH', `/projects/${id}/scenes/1`, '{"shot":{"\\ud800":1}}'],
    ];
    for (const [method, path, body] of [...values.flatMap(([, v]) => bodies(v)), ...keys]) {
      const res = await raw(method, path, body);
      expect(res.status, `${method} ${path} ${body.slice(0, 80)}`).toBe(400);
      expect(res.json.error.code).toBe('VALIDATION_FAILED');
    }
    const scene = (await raw('GET', `/projects/${id}`)).json.generatedOutput.scenes[0];
    expect(scene).toMatchObject({ prompt: 'p', shot: { lens: 35 } });
    expect(scene).not.toHaveProperty('k\u0000');
  });

  it('a tampered cursor with an impossible timestamp, on both lists', async () => {
    // Year 0 has the right shape and Date takes it, but PostgreSQL has no year 0.
    for (const ts of ['2026-02-30 10:00:00+00', '2026-13-01 10:00:00+00', '2026-01-01 25:61:00+00', '0000-01-01 00:00:00+00']) {
      const cursor = Buffer.from(JSON.stringify([ts, randomUUID()])).toString('base64url');
      for (const list of ['/projects', '/images']) expectBadRequest(await raw('GET', `${list}?cursor=${cursor}`), 'cursor');
    }
  });
});
