import { describe, expect, it } from 'vitest';
import { signHs256, startFakeJwks, supabaseUserClaims } from '../fakes/jwks.ts';
import { expectRefused, ISSUER, SECRET, USER_ID, verifierFor } from './support.ts';

// Claims are checked after the signature: every token here is validly signed.
const sign = (claims: Record<string, unknown>) => signHs256(SECRET, claims);
const user = (over: Record<string, unknown> = {}) => supabaseUserClaims({ sub: USER_ID, iss: ISSUER, ...over });
const operator = (over: Record<string, unknown> = {}) => ({ role: 'service_role', ...over });
const verify = (token: string, o: Parameters<typeof verifierFor>[1] = {}) => verifierFor(undefined, o).verify(token);

describe('users', () => {
  it('a wrong aud is refused', async () => {
    const token = await sign(user({ aud: 'anon' }));
    await expectRefused(verify(token), token, 'token audience not accepted');
  });

  it('a user token without aud is refused', async () => {
    const token = await sign(user({ aud: undefined }));
    await expectRefused(verify(token), token, 'token has no aud claim');
  });

  it('a wrong iss is refused when an issuer is configured', async () => {
    const token = await sign(user({ iss: 'https://other.supabase.co/auth/v1' }));
    await expectRefused(verify(token), token, 'token issuer not accepted');
  });

  it('a user token without iss is refused when an issuer is configured', async () => {
    const token = await sign(user({ iss: undefined }));
    await expectRefused(verify(token), token, 'token has no iss claim');
  });

  it('iss is not checked when no issuer is configured', async () => {
    const token = await sign(user({ iss: 'https://anything.example/auth/v1' }));
    await expect(verify(token, { issuer: undefined })).resolves.toMatchObject({ kind: 'user', userId: USER_ID });
  });

  it.each([
    ['a name', 'alice'],
    ['a UUID with a suffix', `${USER_ID}x`],
    ['a UUID inside a string', `user:${USER_ID}`],
    ['a number', 42],
    ['an empty string', ''],
  ])('sub as %s is not a UUID', async (_, sub) => {
    const token = await sign(user({ sub }));
    await expectRefused(verify(token), token, 'sub is not a UUID');
  });

  it('a user token without sub is refused', async () => {
    const token = await sign(user({ sub: undefined }));
    await expectRefused(verify(token), token, 'token has no sub claim');
  });

  it('an anonymous user is accepted, and said to be one, when allowed', async () => {
    const token = await sign(user({ is_anonymous: true }));
    await expect(verify(token, { allowAnonymous: true })).resolves.toEqual({ kind: 'user', userId: USER_ID, anonymous: true });
  });

  it('an anonymous user is refused when not allowed; a signed-in one is not', async () => {
    const anonymous = await sign(user({ is_anonymous: true }));
    await expectRefused(verify(anonymous, { allowAnonymous: false }), anonymous, 'anonymous users are not accepted');
    await expect(verify(await sign(user({ is_anonymous: false })), { allowAnonymous: false })).resolves.toMatchObject({ anonymous: false });
  });

  it('is_anonymous that is not a boolean is refused', async () => {
    const token = await sign(user({ is_anonymous: 'true' }));
    await expectRefused(verify(token, { allowAnonymous: false }), token, 'is_anonymous is not a boolean');
  });

  it('role anon is refused even with a sub and our aud', async () => {
    const token = await sign(user({ role: 'anon' }));
    await expectRefused(verify(token), token, 'anon key does not identify a user');
  });
});

describe('operators (role service_role)', () => {
  it('without aud, sub or iss, is an operator', async () => {
    await expect(verify(await sign(operator()))).resolves.toEqual({ kind: 'operator' });
  });

  it('with our aud, is an operator', async () => {
    await expect(verify(await sign(operator({ aud: 'authenticated' })))).resolves.toEqual({ kind: 'operator' });
  });

  it('with an aud that is not ours, is refused', async () => {
    const token = await sign(operator({ aud: 'some-other-service' }));
    await expectRefused(verify(token), token, 'token audience not accepted');
  });

  it('with the configured issuer or "supabase", is an operator; with another issuer, is refused', async () => {
    await expect(verify(await sign(operator({ iss: ISSUER })))).resolves.toEqual({ kind: 'operator' });
    await expect(verify(await sign(operator({ iss: 'supabase' })))).resolves.toEqual({ kind: 'operator' });
    const token = await sign(operator({ iss: 'https://other.supabase.co/auth/v1' }));
    await expectRefused(verify(token), token, 'token issuer not accepted');
  });

  it('expired, is refused', async () => {
    const token = await signHs256(SECRET, operator(), { expiresIn: -3600 });
    await expectRefused(verify(token), token, 'token expired');
  });

  it('a sub is ignored: the operator is not that user', async () => {
    await expect(verify(await sign(operator({ sub: USER_ID, aud: 'authenticated' })))).resolves.toEqual({ kind: 'operator' });
  });

  it('signed by a JWKS key, is an operator', async () => {
    const jwks = await startFakeJwks();
    try {
      const token = await jwks.sign(operator({ iss: ISSUER }));
      await expect(verifierFor(jwks.url).verify(token)).resolves.toEqual({ kind: 'operator' });
    } finally {
      await jwks.close();
    }
  });
});
