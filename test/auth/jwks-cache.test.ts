import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { JWKS_CACHE_MAX_AGE_MS, JWKS_COOLDOWN_MS, JWKS_RETRY_AFTER_FAILURE_MS } from '../../src/auth/jwks.ts';
import { SigningKeysUnavailableError } from '../../src/auth/tokens.ts';
import { signHs256, startFakeJwks, supabaseUserClaims, type FakeJwks } from '../fakes/jwks.ts';
import { expectRefused, ISSUER, SECRET, USER_ID, verifierFor } from './support.ts';

// Only Date is faked: jose's cache ages by Date.now(), so moving the clock is how time passes here;
// sockets and fetch keep their real timers.
let jwks: FakeJwks;
beforeEach(async () => {
  jwks = await startFakeJwks();
  vi.useFakeTimers({ toFake: ['Date'] });
});
afterEach(async () => {
  vi.useRealTimers();
  await jwks.close();
});

const later = (ms: number) => vi.setSystemTime(Date.now() + ms);
const user = () => supabaseUserClaims({ sub: USER_ID, iss: ISSUER });

async function expectUnavailable(verifying: Promise<unknown>): Promise<SigningKeysUnavailableError> {
  const err = await verifying.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SigningKeysUnavailableError);
  expect((err as SigningKeysUnavailableError).retryAfterS).toBeGreaterThan(0);
  return err as SigningKeysUnavailableError;
}

describe('JWKS cache', () => {
  it('fetches the key set once for many tokens, concurrent or not', async () => {
    const v = verifierFor(jwks.url);
    const tokens = await Promise.all(['es256-1', 'rs256-1', 'ed25519-1'].map((kid) => jwks.sign(user(), { kid })));
    await Promise.all(Array.from({ length: 20 }, (_, i) => v.verify(tokens[i % 3]!)));
    for (const token of tokens) await v.verify(token);
    expect(jwks.fetches()).toBe(1);
  });

  it('HS256 tokens never fetch the key set', async () => {
    await verifierFor(jwks.url).verify(await signHs256(SECRET, user()));
    expect(jwks.fetches()).toBe(0);
  });

  it('a key added after start is fetched once the cooldown has passed, then cached', async () => {
    const v = verifierFor(jwks.url);
    await v.verify(await jwks.sign(user()));
    await jwks.rotate({ add: [{ kid: 'es256-2', alg: 'ES256' }] });
    const rotated = await jwks.sign(user(), { kid: 'es256-2' });

    // Just after a fetch, an unknown kid does not fetch again.
    await expectRefused(v.verify(rotated), rotated, 'unknown signing key');
    expect(jwks.fetches()).toBe(1);

    later(JWKS_COOLDOWN_MS + 1_000);
    await expect(v.verify(rotated)).resolves.toMatchObject({ kind: 'user', userId: USER_ID });
    expect(jwks.fetches()).toBe(2);
    await v.verify(rotated);
    await v.verify(await jwks.sign(user(), { kid: 'rs256-1' }));
    expect(jwks.fetches()).toBe(2);
  });

  it('unknown kids cost at most one fetch per cooldown, however many are sent', async () => {
    const v = verifierFor(jwks.url);
    await v.verify(await jwks.sign(user()));
    await jwks.rotate({ add: [{ kid: 'ghost', alg: 'ES256', published: false }] });
    const ghost = await jwks.sign(user(), { kid: 'ghost' });

    later(JWKS_COOLDOWN_MS + 1_000);
    for (let i = 0; i < 10; i++) await expectRefused(v.verify(ghost), ghost, 'unknown signing key');
    await Promise.all(Array.from({ length: 10 }, () => expectRefused(v.verify(ghost), ghost, 'unknown signing key')));
    expect(jwks.fetches()).toBe(2);

    later(JWKS_COOLDOWN_MS + 1_000);
    for (let i = 0; i < 10; i++) await expectRefused(v.verify(ghost), ghost, 'unknown signing key');
    expect(jwks.fetches()).toBe(3);
  });

  it('a key removed from the set stops verifying once the cache has aged out', async () => {
    const v = verifierFor(jwks.url);
    const old = await jwks.sign(user(), { kid: 'es256-1', expiresIn: '1d' });
    await v.verify(old);
    await jwks.rotate({ remove: ['es256-1'] });
    await v.verify(old); // cached: revocation takes up to the cache's max age
    expect(jwks.fetches()).toBe(1);

    later(JWKS_CACHE_MAX_AGE_MS + 1_000);
    await expectRefused(v.verify(old), old, 'unknown signing key');
    expect(jwks.fetches()).toBe(2);
    await expect(v.verify(await jwks.sign(user(), { kid: 'rs256-1' }))).resolves.toMatchObject({ kind: 'user' });
  });
});

describe('JWKS unavailable', () => {
  it.each(['server_error', 'not_found', 'malformed_json', 'not_a_key_set'] as const)(
    'a JWKS answering %s makes the keys unavailable (503), not the token invalid (401)',
    async (fault) => {
      jwks.script(fault);
      const err = await expectUnavailable(verifierFor(jwks.url).verify(await jwks.sign(user())));
      expect(err.message).toBe('signing keys unavailable');
      expect(err.cause).toBeDefined();
    },
  );

  it('an unreachable JWKS makes the keys unavailable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const v = verifierFor(`http://127.0.0.1:${port}/.well-known/jwks.json`);
    await expectUnavailable(v.verify(await jwks.sign(user())));
  });

  it('after a failed fetch, no fetch until the backoff has passed; then it recovers', async () => {
    const v = verifierFor(jwks.url);
    const token = await jwks.sign(user());
    jwks.script('server_error');
    await expectUnavailable(v.verify(token));
    for (let i = 0; i < 5; i++) await expectUnavailable(v.verify(token));
    await Promise.all(Array.from({ length: 10 }, () => expectUnavailable(v.verify(token))));
    expect(jwks.fetches()).toBe(1);

    later(JWKS_RETRY_AFTER_FAILURE_MS + 1_000);
    await expect(v.verify(token)).resolves.toMatchObject({ kind: 'user' });
    expect(jwks.fetches()).toBe(2);
  });

  it('a failed refetch for an unknown kid does not lock out the keys already cached', async () => {
    const v = verifierFor(jwks.url);
    const known = await jwks.sign(user(), { kid: 'rs256-1' });
    await v.verify(known);
    await jwks.rotate({ add: [{ kid: 'ghost', alg: 'ES256', published: false }] });
    const ghost = await jwks.sign(user(), { kid: 'ghost' });

    later(JWKS_COOLDOWN_MS + 1_000);
    jwks.script('server_error');
    await expectUnavailable(v.verify(ghost));
    expect(jwks.fetches()).toBe(2);

    // While backing off: cached keys still verify, unknown kids are unknown, nothing is fetched.
    await expect(v.verify(known)).resolves.toMatchObject({ kind: 'user' });
    await expectRefused(v.verify(ghost), ghost, 'unknown signing key');
    expect(jwks.fetches()).toBe(2);
  });

  it('keys cached when a backoff began stop verifying when they age out during it', async () => {
    const v = verifierFor(jwks.url);
    const token = await jwks.sign(user(), { expiresIn: '1d' });
    await v.verify(token);
    await jwks.rotate({ add: [{ kid: 'ghost', alg: 'ES256', published: false }] });
    const ghost = await jwks.sign(user(), { kid: 'ghost', expiresIn: '1d' });
    later(JWKS_CACHE_MAX_AGE_MS - 1_000);
    jwks.script('server_error');
    await expectUnavailable(v.verify(ghost));
    await expect(v.verify(token)).resolves.toMatchObject({ kind: 'user' });
    later(2_000); // still backing off, and the cache is now older than its max age
    await expectUnavailable(v.verify(token));
    expect(jwks.fetches()).toBe(2);
  });

  it('cached keys are not trusted past their max age when the JWKS is down', async () => {
    const v = verifierFor(jwks.url);
    const token = await jwks.sign(user(), { expiresIn: '1d' });
    await v.verify(token);
    later(JWKS_CACHE_MAX_AGE_MS + 1_000);
    jwks.script('server_error', 'server_error');
    await expectUnavailable(v.verify(token));
    await expectUnavailable(v.verify(token));
    expect(jwks.fetches()).toBe(2);
  });
});
