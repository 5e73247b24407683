import { expect } from 'vitest';
import { createTokenVerifier, TokenError, type TokenVerifierOptions } from '../../src/auth/tokens.ts';

export const SECRET = 'sceneworks-test-jwt-secret-0123456789abcdef';
export const ISSUER = 'http://127.0.0.1:54321/auth/v1';
export const USER_ID = '5b0f8e2c-3a1d-4c6e-9f7a-2d4b6c8e0a12';

/** A verifier as `AUTH=jwt` builds it by default, with both key kinds unless told otherwise. */
export function verifierFor(jwksUrl: string | undefined, o: Partial<TokenVerifierOptions> = {}) {
  return createTokenVerifier({
    jwksUrl,
    secret: SECRET,
    audience: 'authenticated',
    issuer: ISSUER,
    allowAnonymous: true,
    clockToleranceS: 30,
    ...o,
  });
}

/** Asserts a TokenError with exactly this message, which never contains the token or a part of it. */
export async function expectRefused(verifying: Promise<unknown>, token: string, message: string): Promise<void> {
  const err = await verifying.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenError);
  expect((err as TokenError).message).toBe(message);
  for (const part of token.split('.').filter((p) => p.length >= 8)) {
    expect((err as TokenError).message).not.toContain(part);
  }
}
