import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHs256, signNone, startFakeJwks, supabaseLegacyKey, supabaseUserClaims, type FakeJwks } from '../fakes/jwks.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { sseReader } from '../support/sse.ts';

/**
 * AUTH=jwt through the whole app: Supabase-style access tokens (JWKS and the legacy HS256
 * secret), users isolated from each other, the operator role, and nothing of a token in logs.
 */
const SECRET = 'a-legacy-jwt-secret-of-at-least-32-chars';
const ISSUER = 'https://abcd.supabase.co/auth/v1';
let jwks: FakeJwks;
let t: TestApp;
const logLines: string[] = [];

const alice = randomUUID();
const bob = randomUUID();
let aliceToken: string;
let bobToken: string;
let operatorToken: string;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  jwks = await startFakeJwks();
  t = await startTestApp(
    { AUTH: 'jwt', JWT_JWKS_URL: jwks.url, JWT_SECRET: SECRET, JWT_ISSUER: ISSUER, LOG_LEVEL: 'info', STORAGE_PUBLIC: 'true' },
    { logDestination: { write: (line: string) => void logLines.push(line) } },
  );
  aliceToken = await jwks.sign(supabaseUserClaims({ sub: alice, iss: ISSUER }));
  bobToken = await jwks.sign(supabaseUserClaims({ sub: bob, iss: ISSUER }), { kid: 'rs256-1' });
  operatorToken = await supabaseLegacyKey(SECRET, 'service_role');
});
afterAll(async () => {
  await t.close();
  await jwks.close();
});

const create = async (token: string, prompt: string) => {
  const res = await t.call('POST', '/projects', { scenes: [{ prompt }] }, bearer(token));
  expect(res.status).toBe(202);
  return res.body.id as string;
};

describe('who may call', () => {
  it('no token: 401 UNAUTHORIZED with WWW-Authenticate: Bearer, on every route but the public ones', async () => {
    for (const [method, path] of [['GET', '/projects'], ['POST', '/projects'], ['GET', `/projects/${randomUUID()}`], ['GET', '/nothing-here']] as const) {
      const res = await t.call(method, path);
      expect(res.status, path).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="sceneworks"');
    }
    for (const path of ['/healthz', '/readyz', '/openapi.json', '/docs']) expect((await t.call('GET', path)).status, path).toBe(200);
  });

  it('a token that does not authenticate: 401 with error="invalid_token" and the reason', async () => {
    const cases: [string, string][] = [
      ['expired', await jwks.sign(supabaseUserClaims({ iss: ISSUER }), { expiresIn: -3600 })],
      ['not yet valid', await jwks.sign(supabaseUserClaims({ iss: ISSUER }), { notBefore: 3600 })],
      ['wrong audience', await jwks.sign(supabaseUserClaims({ iss: ISSUER, aud: 'someone-else' }))],
      ['wrong issuer', await jwks.sign(supabaseUserClaims({ iss: 'https://evil.test/auth/v1' }))],
      ['alg none', signNone(supabaseUserClaims({ iss: ISSUER }))],
      ['HS256 signed with the public key', await signHs256(await jwks.publicKeyPem('rs256-1'), supabaseUserClaims({ iss: ISSUER }))],
      ['sub not a UUID', await jwks.sign(supabaseUserClaims({ iss: ISSUER, sub: 'alice' }))],
      ['an anon key', await supabaseLegacyKey(SECRET, 'anon')],
      ['wrong secret', await signHs256('another-secret-of-at-least-32-chars!!', supabaseUserClaims({ iss: ISSUER }))],
      ['garbage', 'not.a.token'],
    ];
    for (const [name, token] of cases) {
      const res = await t.call('GET', '/projects', undefined, bearer(token));
      expect(res.status, name).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
      expect(res.headers.get('www-authenticate'), name).toMatch(/^Bearer realm="sceneworks", error="invalid_token", error_description=".+"$/);
    }
    expect((await t.call('GET', '/projects', undefined, { authorization: 'Basic dXNlcjpwYXNz' })).status).toBe(401);
  });

  it('users see only their own projects: another user’s is a 404 on every route, and nothing of it changes', async () => {
    const mine = await create(aliceToken, 'alice one');
    const theirs = await create(bobToken, 'bob one');
    expect((await t.call('GET', `/projects/${mine}`, undefined, bearer(aliceToken))).status).toBe(200);
    for (const [method, path, body] of [
      ['GET', `/projects/${theirs}`],
      ['GET', `/project/${theirs}`],
      ['GET', `/projects/${theirs}/events`],
      ['POST', `/projects/${theirs}/generate`],
      ['POST', `/projects/${theirs}/scenes/1/regenerate`, { prompt: 'hijacked' }],
    ] as const) {
      const res = await t.call(method, path, body, bearer(aliceToken));
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    const listed = (await t.call('GET', '/projects', undefined, bearer(aliceToken))).body.items.map((p: any) => p.id);
    expect(listed).toContain(mine);
    expect(listed).not.toContain(theirs);
    const bobs = await t.call('GET', `/projects/${theirs}`, undefined, bearer(bobToken));
    expect(bobs.body.generatedOutput.scenes[0].prompt).toBe('bob one');
    const [row] = await t.db.sql<{ userId: string }[]>`SELECT user_id FROM content_creation_requests WHERE id = ${mine}`;
    expect(row!.userId).toBe(alice);
  });

  it('the event stream takes the token as ?access_token=, and still only the owner’s', async () => {
    const mine = await create(aliceToken, 'watched');
    const res = await t.app.request(`/projects/${mine}/events?access_token=${encodeURIComponent(aliceToken)}`);
    expect(res.status).toBe(200);
    const events = sseReader(res.body!);
    expect((await events.next())?.event).toBe('progress');
    await events.cancel();
    expect((await t.app.request(`/projects/${mine}/events?access_token=${encodeURIComponent(bobToken)}`)).status).toBe(404);
    expect((await t.app.request(`/projects/${mine}/events`)).status).toBe(401);
    // Only there: elsewhere a token in the query is no token.
    expect((await t.app.request(`/projects/${mine}?access_token=${encodeURIComponent(aliceToken)}`)).status).toBe(401);
  });

  it('service_role is an operator: every project, unowned ones too; X-Owner-Id acts for one user', async () => {
    const mine = await create(aliceToken, 'alice two');
    const theirs = await create(bobToken, 'bob two');
    const unowned = randomUUID();
    await t.db.sql`INSERT INTO content_creation_requests (id, user_id, generated_output) VALUES (${unowned}, NULL, ${t.db.sql.json({ scenes: [{ prompt: 'legacy' }] })})`;

    for (const id of [mine, theirs, unowned]) expect((await t.call('GET', `/projects/${id}`, undefined, bearer(operatorToken))).status).toBe(200);
    const all = (await t.call('GET', '/projects?limit=100', undefined, bearer(operatorToken))).body.items.map((p: any) => p.id);
    expect(all).toEqual(expect.arrayContaining([mine, theirs, unowned]));
    // Users never see unowned projects.
    expect((await t.call('GET', `/projects/${unowned}`, undefined, bearer(aliceToken))).status).toBe(404);
    // Creating needs a user to create for.
    expect((await t.call('POST', '/projects', { scenes: [{ prompt: 'for whom?' }] }, bearer(operatorToken))).status).toBe(400);

    const forAlice = { ...bearer(operatorToken), 'x-owner-id': alice };
    const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'made for alice' }] }, forAlice);
    expect(created.status).toBe(202);
    expect((await t.call('GET', `/projects/${created.body.id}`, undefined, bearer(aliceToken))).status).toBe(200);
    expect((await t.call('GET', `/projects/${theirs}`, undefined, forAlice)).status).toBe(404);
    expect((await t.call('GET', '/projects', undefined, { ...bearer(operatorToken), 'x-owner-id': 'nope' })).status).toBe(400);
    // A user cannot act for another.
    const res = await t.call('GET', `/projects/${theirs}`, undefined, { ...bearer(aliceToken), 'x-owner-id': bob });
    expect(res.status).toBe(403);
  });

  it('anonymous Supabase users are users (JWT_ALLOW_ANONYMOUS defaults to true)', async () => {
    const anonymous = await jwks.sign(supabaseUserClaims({ iss: ISSUER, is_anonymous: true }), { kid: 'ed25519-1' });
    expect((await t.call('GET', '/projects', undefined, bearer(anonymous))).status).toBe(200);
  });

  it('no token, API key or signed-URL token reaches a log line', async () => {
    const mine = await create(aliceToken, 'logged');
    await t.call('GET', '/projects', undefined, bearer('garbage.token.value-that-must-not-be-logged'));
    const stream = await t.app.request(`/projects/${mine}/events?access_token=${encodeURIComponent(aliceToken)}`);
    await stream.body?.cancel();
    const log = logLines.join('');
    expect(log).toContain('"path":"/projects"'); // the lines are there
    for (const secret of [aliceToken, bobToken, operatorToken, 'garbage.token.value-that-must-not-be-logged', SECRET]) expect(log).not.toContain(secret);
    for (const part of aliceToken.split('.')) expect(log).not.toContain(part);
  });
});

describe('the claims policy comes from the configuration', () => {
  it('JWT_ALLOW_ANONYMOUS=false refuses anonymous users, JWT_AUDIENCE names the audience, JWT_CLOCK_TOLERANCE_S bounds exp', async () => {
    const strict = await startTestApp(
      { AUTH: 'jwt', JWT_JWKS_URL: jwks.url, JWT_ISSUER: ISSUER, JWT_ALLOW_ANONYMOUS: 'false', JWT_AUDIENCE: 'my-app', JWT_CLOCK_TOLERANCE_S: '0' },
      { runner: false, db: t.db },
    );
    try {
      const claims = (over: Record<string, unknown>) => supabaseUserClaims({ iss: ISSUER, aud: 'my-app', ...over });
      const status = async (app: TestApp, token: string) => (await app.call('GET', '/projects', undefined, bearer(token))).status;
      expect(await status(strict, await jwks.sign(claims({ is_anonymous: false })))).toBe(200);
      expect(await status(strict, await jwks.sign(claims({ is_anonymous: true })))).toBe(401);
      expect(await status(strict, await jwks.sign(claims({ aud: 'authenticated' })))).toBe(401);
      // Expired 10 s ago: within the default 30 s tolerance, past a tolerance of 0.
      expect(await status(strict, await jwks.sign(claims({}), { expiresIn: -10 }))).toBe(401);
      expect(await status(t, await jwks.sign(supabaseUserClaims({ iss: ISSUER }), { expiresIn: -10 }))).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('when the JWKS cannot be reached', () => {
  it('a token that needs it is a 503 with Retry-After, not a 401', async () => {
    const down = await startFakeJwks();
    const token = await down.sign(supabaseUserClaims({ iss: ISSUER }));
    const url = down.url;
    await down.close();
    const u = await startTestApp({ AUTH: 'jwt', JWT_JWKS_URL: url, JWT_ISSUER: ISSUER }, { runner: false, db: t.db });
    try {
      const res = await u.call('GET', '/projects', undefined, bearer(token));
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('UNAVAILABLE');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await u.close();
    }
  });
});

describe('RATE_LIMIT_PER_MIN: writes per owner, shared across replicas', () => {
  it('the 4th write of a minute is a 429 RATE_LIMITED with Retry-After and RateLimit fields, whichever replica gets it', async () => {
    const env = { AUTH: 'jwt', JWT_JWKS_URL: jwks.url, JWT_SECRET: SECRET, JWT_ISSUER: ISSUER, RATE_LIMIT_PER_MIN: '3' };
    const one = await startTestApp(env, { runner: false, db: t.db });
    const two = await startTestApp(env, { runner: false, db: t.db });
    try {
      const carol = await jwks.sign(supabaseUserClaims({ iss: ISSUER }));
      const dave = await jwks.sign(supabaseUserClaims({ iss: ISSUER }));
      const post = (app: TestApp, token: string) => app.call('POST', '/projects', { scenes: [{ prompt: 'limited' }] }, bearer(token));
      const first = await post(one, carol);
      expect(first.status).toBe(202);
      expect(first.headers.get('ratelimit-policy')).toBe('"writes";q=3;w=60');
      expect(first.headers.get('ratelimit')).toMatch(/^"writes";r=2;t=\d+$/);
      expect((await post(two, carol)).status).toBe(202);
      expect((await post(one, carol)).status).toBe(202);
      const refused = await post(two, carol);
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('RATE_LIMITED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('ratelimit')).toMatch(/^"writes";r=0;t=\d+$/);
      // Reads are not writes; another owner has a limit of their own.
      expect((await one.call('GET', '/projects', undefined, bearer(carol))).status).toBe(200);
      expect((await post(one, dave)).status).toBe(202);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
