import { createHmac, createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../../src/auth/tokens.ts';
import { signHs256, signNone, startFakeJwks, supabaseLegacyKey, supabaseUserClaims, type FakeJwks } from '../fakes/jwks.ts';
import { expectRefused, ISSUER, SECRET, USER_ID, verifierFor } from './support.ts';

let jwks: FakeJwks;
beforeAll(async () => {
  jwks = await startFakeJwks();
  // An RSA key published without "alg": only our own list says what it may verify.
  await jwks.rotate({ add: [{ kid: 'rs-no-alg', alg: 'RS256', publishAlg: false }, { kid: 'never-published', alg: 'ES256', published: false }] });
});
afterAll(() => jwks.close());

const user = (over: Record<string, unknown> = {}) => supabaseUserClaims({ sub: USER_ID, iss: ISSUER, ...over });

describe('valid tokens', () => {
  it.each(['es256-1', 'rs256-1', 'ed25519-1'])('a user token signed by the JWKS key %s is that user', async (kid) => {
    const v = verifierFor(jwks.url);
    const token = await jwks.sign(user(), { kid });
    await expect(v.verify(token)).resolves.toEqual({ kind: 'user', userId: USER_ID, anonymous: false });
  });

  it('a user token signed with the shared secret (HS256) is that user', async () => {
    const token = await signHs256(SECRET, user());
    await expect(verifierFor(jwks.url).verify(token)).resolves.toEqual({ kind: 'user', userId: USER_ID, anonymous: false });
  });

  it('an aud list that names our audience is accepted; the user id is lower-cased', async () => {
    const token = await jwks.sign(user({ aud: ['other', 'authenticated'], sub: USER_ID.toUpperCase() }));
    await expect(verifierFor(jwks.url).verify(token)).resolves.toMatchObject({ kind: 'user', userId: USER_ID });
  });
});

describe('signature and algorithm', () => {
  it('a token whose payload was swapped has an invalid signature', async () => {
    const [header, , signature] = (await jwks.sign(user())).split('.');
    const [, otherPayload] = (await jwks.sign(user({ sub: randomUUID() }))).split('.');
    const forged = `${header}.${otherPayload}.${signature}`;
    await expectRefused(verifierFor(jwks.url).verify(forged), forged, 'token signature invalid');
  });

  it('an HS256 token signed with another secret has an invalid signature', async () => {
    const token = await signHs256('not-the-project-secret-0123456789', user());
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token signature invalid');
  });

  it.each([
    ['JWKS and secret', true, true],
    ['JWKS only', true, false],
    ['secret only', false, true],
  ])('alg none is refused (%s)', async (_, withJwks, withSecret) => {
    const v = verifierFor(withJwks ? jwks.url : undefined, { secret: withSecret ? SECRET : undefined });
    const token = signNone(user(), { kid: 'es256-1' });
    await expectRefused(v.verify(token), token, 'token algorithm not accepted');
  });

  it.each(['pem', 'jwk'])('HS256 signed with the public key (%s) as HMAC secret is refused', async (form) => {
    const material = form === 'pem' ? await jwks.publicKeyPem('es256-1') : JSON.stringify(jwks.publicJwk('es256-1'));
    const token = await signHs256(material, user(), { headerKid: 'es256-1' });
    // With a secret configured, HS256 is checked against the secret only.
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token signature invalid');
    // Without one, the JWKS's keys never verify HS256.
    await expectRefused(verifierFor(jwks.url, { secret: undefined }).verify(token), token, 'token algorithm not accepted');
  });

  it('the shared secret verifies HS256 only, not HS384 or HS512 made with it', async () => {
    const v = verifierFor(undefined);
    for (const alg of ['HS384', 'HS512'] as const) {
      const token = await signHs256(SECRET, user(), { alg });
      await expectRefused(v.verify(token), token, 'token algorithm not accepted');
    }
  });

  it('a JWKS key without "alg" verifies RS256 but not PS256 made with the same key', async () => {
    const v = verifierFor(jwks.url);
    await expect(v.verify(await jwks.sign(user(), { kid: 'rs-no-alg' }))).resolves.toMatchObject({ kind: 'user' });
    const ps256 = await jwks.sign(user(), { kid: 'rs-no-alg', alg: 'PS256' });
    await expectRefused(v.verify(ps256), ps256, 'token algorithm not accepted');
  });

  it('a JWKS token must name its key: no kid is refused, not matched to the only key of its type', async () => {
    const token = await jwks.sign(user(), { kid: 'es256-1', headerKid: null });
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token has no key id');
  });

  it('an RS256 token verified by an RSA key under 2048 bits is refused, not an error', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    jwks.publishRaw({ ...publicKey.export({ format: 'jwk' }), kid: 'rsa-1024', alg: 'RS256', use: 'sig' });
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${part({ alg: 'RS256', typ: 'JWT', kid: 'rsa-1024' })}.${part({ ...user(), exp: Math.floor(Date.now() / 1000) + 600 })}`;
    const token = `${input}.${createSign('RSA-SHA256').update(input).sign(privateKey).toString('base64url')}`;
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token not accepted');
  });

  it('a token for a kid the JWKS never had is an unknown signing key', async () => {
    const token = await jwks.sign(user(), { kid: 'never-published' });
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'unknown signing key');
  });

  it.each([
    ['empty', '', 'token missing'],
    ['one word', 'garbage', 'token malformed'],
    ['three dots', 'a.b.c', 'token malformed'],
    ['only dots', '..', 'token malformed'],
    ['a bearer prefix', 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig', 'token malformed'],
    ['a header that is not JSON', `${Buffer.from('{"alg":').toString('base64url')}.e30.c2ln`, 'token malformed'],
    ['five parts (a JWE)', 'eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00iLCJraWQiOiJlczI1Ni0xIn0.a.b.c.d', 'token malformed'],
  ])('garbage: %s', async (_, token, message) => {
    await expectRefused(verifierFor(jwks.url).verify(token), token, message);
  });

  it('a payload that is not a JSON object is malformed', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from('[1,2]').toString('base64url');
    const sig = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
    const token = `${header}.${payload}.${sig}`;
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token malformed');
  });
});

describe('time', () => {
  it('an expired token is refused', async () => {
    const token = await jwks.sign(user(), { expiresIn: -120 });
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token expired');
  });

  it('a token not yet valid is refused', async () => {
    const token = await jwks.sign(user(), { notBefore: 120 });
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token not yet valid');
  });

  it('exp and nbf within the clock tolerance are accepted', async () => {
    const v = verifierFor(jwks.url, { clockToleranceS: 30 });
    await expect(v.verify(await jwks.sign(user(), { expiresIn: -10 }))).resolves.toMatchObject({ kind: 'user' });
    await expect(v.verify(await jwks.sign(user(), { notBefore: 10 }))).resolves.toMatchObject({ kind: 'user' });
  });

  it('a token without exp is refused, a user token or an operator one', async () => {
    for (const token of [
      await jwks.sign(user(), { expiresIn: null }),
      await signHs256(SECRET, { role: 'service_role', iss: 'supabase' }, { expiresIn: null }),
    ]) {
      await expectRefused(verifierFor(jwks.url).verify(token), token, 'token has no exp claim');
    }
  });

  it('iat must be a number', async () => {
    const token = await jwks.sign(user({ iat: 'yesterday' }));
    await expectRefused(verifierFor(jwks.url).verify(token), token, 'token iat claim invalid');
  });
});

describe('key modes', () => {
  it('secret only: HS256 is accepted, asymmetric tokens are refused, and nothing is fetched', async () => {
    const v = createTokenVerifier({ secret: SECRET, audience: 'authenticated', allowAnonymous: true, clockToleranceS: 30 });
    const before = jwks.fetches();
    await expect(v.verify(await signHs256(SECRET, user()))).resolves.toMatchObject({ kind: 'user', userId: USER_ID });
    const es = await jwks.sign(user());
    await expectRefused(v.verify(es), es, 'token algorithm not accepted');
    expect(jwks.fetches()).toBe(before);
  });

  it('JWKS only: asymmetric tokens are accepted, HS256 is refused even with the right secret', async () => {
    const v = createTokenVerifier({ jwksUrl: jwks.url, audience: 'authenticated', allowAnonymous: true, clockToleranceS: 30 });
    await expect(v.verify(await jwks.sign(user(), { kid: 'ed25519-1' }))).resolves.toMatchObject({ kind: 'user' });
    const hs = await signHs256(SECRET, user(), { headerKid: 'es256-1' });
    await expectRefused(v.verify(hs), hs, 'token algorithm not accepted');
  });

  it('no keys at all is a programming error, not a verifier that accepts nothing', () => {
    expect(() => createTokenVerifier({ audience: 'authenticated', allowAnonymous: true, clockToleranceS: 30 })).toThrow(/jwksUrl and\/or a secret/);
  });
});

describe('legacy API keys', () => {
  it('the legacy service_role key (no aud, no sub, iss "supabase") is an operator', async () => {
    const key = await supabaseLegacyKey(SECRET, 'service_role');
    await expect(verifierFor(jwks.url).verify(key)).resolves.toEqual({ kind: 'operator' });
  });

  it('the legacy anon key authenticates no one', async () => {
    const key = await supabaseLegacyKey(SECRET, 'anon');
    await expectRefused(verifierFor(jwks.url).verify(key), key, 'anon key does not identify a user');
  });

  it('a service_role key signed with another secret is refused', async () => {
    const key = await supabaseLegacyKey('another-project-secret-0123456789', 'service_role');
    await expectRefused(verifierFor(jwks.url).verify(key), key, 'token signature invalid');
  });
});
