import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.ts';
import { startFakeJwks, supabaseUserClaims, type FakeJwks } from '../fakes/jwks.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/**
 * Property-based: random bodies, params, query strings and headers on every route. Whatever
 * arrives, the answer is never a 5xx, and every error is exactly the contract's body with the
 * x-request-id header matching it.
 */
let none: TestApp;
let jwt: TestApp;
let jwks: FakeJwks;
let token: string;
let operatorToken: string;
/** Projects and images that exist, each app's (so that requests reach past the 404), and ones for DELETE to remove. */
const known = { projects: [] as string[], images: [] as string[], doomedProjects: [] as string[], doomedImages: [] as string[] };

beforeAll(async () => {
  none = await startTestApp({}, { runner: false });
  jwks = await startFakeJwks();
  jwt = await startTestApp({ AUTH: 'jwt', JWT_JWKS_URL: jwks.url }, { runner: false, db: none.db });
  token = await jwks.sign(supabaseUserClaims());
  operatorToken = await jwks.sign({ role: 'service_role' });
  const scenes = [{ prompt: 'fuzzed' }, { prompt: 'two', index: 7 }];
  for (const [app, headers] of [[none, {}], [jwt, { authorization: `Bearer ${token}` }]] as const) {
    for (const doomed of [false, true, true]) {
      const created = await app.call('POST', '/projects', { scenes }, headers);
      expect(created.status).toBe(202);
      const slots = await none.db.sql<{ id: string }[]>`SELECT id FROM generated_images WHERE content_creation_request_id = ${created.body.id}`;
      expect(slots.length).toBeGreaterThan(0);
      (doomed ? known.doomedProjects : known.projects).push(created.body.id);
      (doomed ? known.doomedImages : known.images).push(...slots.map((r) => r.id));
    }
  }
});
afterAll(async () => {
  await jwt.close();
  await none.close();
  await jwks.close();
});

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);

/** Header values a client can send (visible ASCII and spaces). */
const headerValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
/** Any text, lone surrogates and NUL included (unit 'binary': every code point). */
const anyText = fc.string({ unit: 'binary', maxLength: 40 });
const segment = fc.oneof(fc.uuid(), fc.constant(randomUUID()), anyText, fc.constantFrom('..', '.', '%2e%2e', '-1', '2147483648', '1e400', '0x10', ' ', '%00', '%'));
const pathPart = segment.map((s) => (/^%/.test(s) ? s : encodeURIComponent(s)));
const sceneIndex = fc.oneof(fc.integer({ min: -5, max: 10 }).map(String), fc.constantFrom('1', '7', '2147483647', '2147483648', '99999999999999999999', '1.5', 'abc', '%20'));
const json = fc.jsonValue({ maxDepth: 4 });
const projectBody = fc.record(
  {
    title: fc.oneof(anyText, json),
    scenes: fc.oneof(
      fc.array(
        fc.oneof(
          fc.record({ prompt: fc.oneof(anyText, json), index: fc.oneof(fc.integer({ min: -3, max: 2 ** 32 }), fc.double(), json), extra: json }, { requiredKeys: [] }),
          json,
        ),
        { maxLength: 4 },
      ),
      json,
    ),
    imagesPerScene: fc.oneof(fc.integer({ min: -2, max: 10 }), json),
    aspectRatio: fc.oneof(fc.constantFrom('1:1', '16:9', '21:9', ''), json),
    style: fc.oneof(anyText, json),
    provider: fc.oneof(fc.constantFrom('local', 'openai', ''), json),
    model: fc.oneof(anyText, json),
    metadata: json,
    webhook: json,
  },
  { requiredKeys: [] },
);
/** Text that is mostly harmless, with what breaks stores and parsers mixed in: NUL, lone surrogates, RTL marks, quotes. */
const nastyText = fc
  .array(fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 3 }) }, { weight: 1, arbitrary: fc.constantFrom('\u0000', '\ud800', '\udfff', '\\', '"', 'é', '🎬', '\u202e', '%00', '\n', '__proto__', '') }), {
    minLength: 1,
    maxLength: 8,
  })
  .map((parts) => parts.join(''));
const nastyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyText,
    fc.integer(),
    fc.double(),
    fc.constantFrom(null, true, 1e300, -0),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(nastyText, tie('value'), { maxKeys: 3 }),
  ),
})).value;
/** A project the schema would accept but for what hides in its strings, keys and numbers. */
const plausibleProject = fc.record(
  {
    title: nastyText,
    scenes: fc.array(
      fc.record({ prompt: nastyText, index: fc.oneof(fc.nat(50), fc.constantFrom(2_147_483_647, 2_147_483_648)), notes: nastyJson }, { requiredKeys: ['prompt'] }),
      { minLength: 1, maxLength: 4 },
    ),
    imagesPerScene: fc.integer({ min: 1, max: 8 }),
    aspectRatio: fc.constantFrom('1:1', '16:9', '9:16'),
    style: nastyText,
    metadata: fc.dictionary(nastyText, nastyJson, { maxKeys: 4 }),
  },
  { requiredKeys: ['scenes'] },
);
const body = fc.oneof(
  { weight: 4, arbitrary: plausibleProject.map((b) => JSON.stringify(b)) },
  { weight: 3, arbitrary: projectBody.map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: json.map((v) => JSON.stringify(v)) },
  // What PATCH /images/:id and PATCH /projects/:id/scenes/:sceneIndex take, or nearly.
  { weight: 1, arbitrary: fc.record({ favorite: fc.oneof(fc.boolean(), json) }, { requiredKeys: [] }).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.record({ prompt: fc.oneof(nastyText, json), notes: nastyJson }, { requiredKeys: [] }).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: anyText },
  { weight: 1, arbitrary: fc.constantFrom('', '{', '{"scenes":[{"prompt":"a"}]', '[]', 'null', '{"prompt":"x\\u0000"}', '{"a":1e400}', `{"a":${'['.repeat(3000)}${']'.repeat(3000)}}`) },
);
// Mostly what real clients send, so most requests get past the guards to validation and the database.
const headers = fc.record(
  {
    'content-type': fc.oneof(
      { weight: 8, arbitrary: fc.constant('application/json') },
      { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8', 'application/merge-patch+json') },
      { weight: 1, arbitrary: headerValue },
    ),
    'idempotency-key': headerValue,
    'x-request-id': headerValue,
    authorization: fc.oneof(headerValue, fc.constant('Bearer x.y.z')),
    'if-none-match': headerValue,
    origin: fc.oneof({ weight: 4, arbitrary: fc.constant('http://localhost') }, { weight: 1, arbitrary: fc.constantFrom('https://evil.example', 'null') }),
    'x-owner-id': fc.oneof(fc.uuid(), headerValue),
  },
  { requiredKeys: ['content-type'] },
);

type Target = { method: string; path: string };
/** An id of something that exists (one of either app's), or anything at all in its place. */
const existing = (ids: () => string[]) => fc.constant(null).chain(() => fc.constantFrom(...ids()));
const idOf = (ids: () => string[]) => fc.oneof(pathPart, existing(ids));
const projectRef = idOf(() => known.projects);
const imageRef = idOf(() => known.images);
const cursor = fc.oneof(headerValue, anyText.map((s) => Buffer.from(s).toString('base64url')));
/** Usually a valid value, sometimes anything. */
const mostly = <T>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<T>) => fc.oneof({ weight: 10, arbitrary: valid }, { weight: 1, arbitrary: other });
const query = (fields: Record<string, fc.Arbitrary<string>>) =>
  fc.record(fields, { requiredKeys: [] }).map((q) => new URLSearchParams(q as Record<string, string>).toString());
const version = fc.oneof(fc.integer({ min: -2, max: 12 }).map(String), fc.constantFrom('0', '2147483648', '1.5', 'x', '%20', '1e3'));
const instant = fc.oneof(headerValue, fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom('0000-01-01T00:00:00Z', '2026-01-01T00:00:00+14:00', '275760-09-13T00:00:00Z'));

/**
 * Every route the app serves, by its pattern: a test below fails when the app has a route that
 * is not here, so a new route is fuzzed from the day it is added.
 */
const ROUTES: Record<string, fc.Arbitrary<Target>> = {
  'GET /healthz': fc.constant({ method: 'GET', path: '/healthz' }),
  'GET /readyz': fc.constant({ method: 'GET', path: '/readyz' }),
  'GET /metrics': fc.constant({ method: 'GET', path: '/metrics' }),
  'GET /openapi.json': fc.constant({ method: 'GET', path: '/openapi.json' }),
  'GET /docs': fc.constant({ method: 'GET', path: '/docs' }),
  'GET /docs/*.js': fc.oneof(pathPart, fc.constant('scalar-1.72.1.js')).map((name) => ({ method: 'GET', path: `/docs/${name}` })),
  'GET /files/*': fc.array(pathPart, { minLength: 1, maxLength: 4 }).map((parts) => ({ method: 'GET', path: `/files/${parts.join('/')}` })),
  'GET /': fc.constant({ method: 'GET', path: '/' }),
  'GET /gallery': fc.constant({ method: 'GET', path: '/gallery' }),
  'GET /p/:id': projectRef.map((id) => ({ method: 'GET', path: `/p/${id}` })),
  'GET /assets/:name': fc.oneof(pathPart, fc.constantFrom('app.js', 'style.css', 'nothing.js')).map((name) => ({ method: 'GET', path: `/assets/${name}` })),
  'POST /projects': fc.constant({ method: 'POST', path: '/projects' }),
  'GET /projects': fc.oneof(
    fc.constant({ method: 'GET', path: '/projects' }),
    query({ limit: headerValue, cursor, status: headerValue }).map((q) => ({ method: 'GET', path: `/projects?${q}` })),
  ),
  'GET /projects/:id': projectRef.map((id) => ({ method: 'GET', path: `/projects/${id}` })),
  'GET /project/:id': projectRef.map((id) => ({ method: 'GET', path: `/project/${id}` })),
  'POST /projects/:id/generate': projectRef.map((id) => ({ method: 'POST', path: `/projects/${id}/generate` })),
  'POST /projects/:id/scenes/:sceneIndex/regenerate': fc.tuple(projectRef, sceneIndex).map(([id, s]) => ({ method: 'POST', path: `/projects/${id}/scenes/${s}/regenerate` })),
  'PATCH /projects/:id/scenes/:sceneIndex': fc.tuple(projectRef, sceneIndex).map(([id, s]) => ({ method: 'PATCH', path: `/projects/${id}/scenes/${s}` })),
  'DELETE /projects/:id': idOf(() => known.doomedProjects).map((id) => ({ method: 'DELETE', path: `/projects/${id}` })),
  'GET /projects/:id/cost': projectRef.map((id) => ({ method: 'GET', path: `/projects/${id}/cost` })),
  'GET /projects/:id/webhook-deliveries': projectRef.map((id) => ({ method: 'GET', path: `/projects/${id}/webhook-deliveries` })),
  // A known project's stream stays open: random ids only (a stream that opens is cancelled at once).
  'GET /projects/:id/events': fc.oneof(pathPart, fc.constant(null)).map((id) => ({ method: 'GET', path: `/projects/${id ?? randomUUID()}/events` })),
  'GET /projects/:id/archive': projectRef.map((id) => ({ method: 'GET', path: `/projects/${id}/archive` })),
  // Mostly valid values, so that most pages reach the gallery's queries (search included).
  'GET /images': query({
    limit: mostly(fc.integer({ min: 1, max: 100 }).map(String), headerValue),
    projectId: mostly(existing(() => known.projects), headerValue),
    status: mostly(fc.constantFrom('succeeded', 'failed', 'queued', 'running'), headerValue),
    favorite: mostly(fc.constantFrom('true', 'false'), headerValue),
    provider: mostly(fc.constantFrom('local', 'openai'), anyText),
    q: mostly(fc.oneof(nastyText, fc.constantFrom('"', '-', 'or', '"a phrase" -not', 'fuzz', 'tw', 'two ', '!!!', ':*', '&|')), anyText),
    createdAfter: mostly(fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()), instant),
    createdBefore: mostly(fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()), instant),
  })
    // A made-up cursor is a 400: in few requests.
    .chain((q) => mostly(fc.constant(q), cursor.map((c) => `${q}&cursor=${encodeURIComponent(c)}`)))
    .map((q) => ({ method: 'GET', path: `/images?${q}` })),
  'GET /images/:id': imageRef.map((id) => ({ method: 'GET', path: `/images/${id}` })),
  'PATCH /images/:id': imageRef.map((id) => ({ method: 'PATCH', path: `/images/${id}` })),
  'DELETE /images/:id': idOf(() => known.doomedImages).map((id) => ({ method: 'DELETE', path: `/images/${id}` })),
  'GET /images/:id/download': imageRef.map((id) => ({ method: 'GET', path: `/images/${id}/download` })),
  'GET /images/:id/versions': imageRef.map((id) => ({ method: 'GET', path: `/images/${id}/versions` })),
  'POST /images/:id/versions/:version/restore': fc.tuple(imageRef, version).map(([id, v]) => ({ method: 'POST', path: `/images/${id}/versions/${v}/restore` })),
};
const targets: fc.Arbitrary<Target> = fc.oneof(
  ...Object.values(ROUTES),
  // Methods no route has, and HEAD.
  fc.tuple(fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), fc.constantFrom('/projects', `/projects/${randomUUID()}`, '/healthz', '/images')).map(([method, path]) => ({ method, path })),
);

async function expectContractAnswer(app: TestApp, target: Target, h: Record<string, string>, text: string | undefined) {
  const withBody = text !== undefined && !['GET', 'HEAD'].includes(target.method);
  const res = await app.app.request(target.path, { method: target.method, headers: h, body: withBody ? text : undefined });
  const raw = res.headers.get('content-type')?.startsWith('text/event-stream') ? (await res.body?.cancel(), '') : await res.text();
  const where = `${target.method} ${target.path} -> ${res.status}`;
  expect(res.status, where).toBeLessThan(500);
  expect(res.headers.get('x-request-id'), where).toBeTruthy();
  if (res.status >= 400 && target.method !== 'HEAD') {
    const parsed = JSON.parse(raw);
    expect(Object.keys(parsed), where).toEqual(['error']);
    expect(Object.keys(parsed.error).sort(), where).toEqual(['code', 'details', 'message', 'requestId']);
    expect(ERROR_CODES, where).toContain(parsed.error.code);
    expect(typeof parsed.error.message, where).toBe('string');
    expect(Array.isArray(parsed.error.details), where).toBe(true);
    expect(parsed.error.requestId, where).toBe(res.headers.get('x-request-id'));
  }
}

describe('every route, random input', () => {
  it('fuzzes every route the app serves', () => {
    for (const app of [none, jwt]) {
      const served = new Set(app.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/^\/docs\/scalar-[^/]+\.js$/, '/docs/*.js')}`));
      expect([...served].filter((route) => !(route in ROUTES)), 'routes without a fuzz target').toEqual([]);
    }
  });

  it('single-owner mode: never a 5xx, every error the contract body', async () => {
    await fc.assert(
      fc.asyncProperty(targets, headers, fc.option(body, { nil: undefined }), async (target, h, text) => {
        const { authorization: _, 'x-owner-id': __, ...rest } = h;
        await expectContractAnswer(none, target, rest as Record<string, string>, text);
      }),
      { numRuns: RUNS * 8 },
    );
  });

  it('AUTH=jwt, as a user, as an operator (with and without X-Owner-Id), with random and missing tokens: never a 5xx, every error the contract body', async () => {
    const caller = fc.constantFrom('user', 'operator', 'as generated');
    await fc.assert(
      fc.asyncProperty(targets, headers, fc.option(body, { nil: undefined }), caller, async (target, h, text, who) => {
        // A user's X-Owner-Id is refused before any route runs: users come without one, to reach the routes.
        const { 'x-owner-id': _, ...withoutOwner } = h;
        const sent =
          who === 'user' ? { ...withoutOwner, authorization: `Bearer ${token}` } : who === 'operator' ? { ...h, authorization: `Bearer ${operatorToken}` } : h;
        await expectContractAnswer(jwt, target, sent as Record<string, string>, text);
      }),
      { numRuns: RUNS * 6 },
    );
  });
});
