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
let projectId: string;

beforeAll(async () => {
  none = await startTestApp({}, { runner: false });
  jwks = await startFakeJwks();
  jwt = await startTestApp({ AUTH: 'jwt', JWT_JWKS_URL: jwks.url }, { runner: false, db: none.db });
  token = await jwks.sign(supabaseUserClaims());
  projectId = (await none.call('POST', '/projects', { scenes: [{ prompt: 'fuzzed' }, { prompt: 'two', index: 7 }] })).body.id;
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
const targets: fc.Arbitrary<Target> = fc.oneof(
  fc.constant({ method: 'GET', path: '/projects' }),
  fc.record({ limit: headerValue, cursor: fc.oneof(headerValue, anyText.map((s) => Buffer.from(s).toString('base64url'))), status: headerValue }, { requiredKeys: [] }).map(
    (q) => ({ method: 'GET', path: `/projects?${new URLSearchParams(q as Record<string, string>).toString()}` }),
  ),
  fc.constant({ method: 'POST', path: '/projects' }),
  fc.oneof(pathPart, fc.constant(null)).map((id) => ({ method: 'GET', path: `/projects/${id ?? projectId}` })),
  fc.oneof(pathPart, fc.constant(null)).map((id) => ({ method: 'GET', path: `/project/${id ?? projectId}` })),
  fc.oneof(pathPart, fc.constant(null)).map((id) => ({ method: 'POST', path: `/projects/${id ?? projectId}/generate` })),
  fc.tuple(fc.oneof(pathPart, fc.constant(null)), sceneIndex).map(([id, s]) => ({ method: 'POST', path: `/projects/${id ?? projectId}/scenes/${s}/regenerate` })),
  fc.oneof(pathPart, fc.constant(null)).map((id) => ({ method: 'GET', path: `/projects/${id ?? randomUUID()}/events` })),
  fc.array(pathPart, { minLength: 1, maxLength: 4 }).map((parts) => ({ method: 'GET', path: `/files/${parts.join('/')}` })),
  fc.tuple(fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), fc.constantFrom('/projects', `/projects/${randomUUID()}`, '/healthz')).map(([method, path]) => ({ method, path })),
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
  it('single-owner mode: never a 5xx, every error the contract body', async () => {
    await fc.assert(
      fc.asyncProperty(targets, headers, fc.option(body, { nil: undefined }), async (target, h, text) => {
        const { authorization: _, 'x-owner-id': __, ...rest } = h;
        await expectContractAnswer(none, target, rest as Record<string, string>, text);
      }),
      { numRuns: RUNS * 8 },
    );
  });

  it('AUTH=jwt, with random, missing and valid tokens: never a 5xx, every error the contract body', async () => {
    await fc.assert(
      fc.asyncProperty(targets, headers, fc.option(body, { nil: undefined }), fc.boolean(), async (target, h, text, valid) => {
        const sent = valid ? { ...h, authorization: `Bearer ${token}` } : h;
        await expectContractAnswer(jwt, target, sent as Record<string, string>, text);
      }),
      { numRuns: RUNS * 4 },
    );
  });
});
