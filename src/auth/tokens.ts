import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { callerFromClaims, type Caller } from './claims.ts';
import { SigningKeysUnavailableError, TokenError } from './errors.ts';
import { createJwksKeys } from './jwks.ts';

export type { Caller } from './claims.ts';
export { SigningKeysUnavailableError, TokenError } from './errors.ts';

export interface TokenVerifierOptions {
  /** Asymmetric keys (ES256, RS256, EdDSA), chosen by the token's `kid`. */
  jwksUrl?: string | undefined;
  /** The legacy shared secret (HS256), used as its UTF-8 bytes as Supabase does. */
  secret?: string | undefined;
  audience: string;
  /** Checked when set. */
  issuer?: string | undefined;
  /** Supabase anonymous users (claim `is_anonymous: true`). */
  allowAnonymous: boolean;
  /** Tolerance on `exp` and `nbf`, in seconds. */
  clockToleranceS: number;
}

export interface TokenVerifier {
  /**
   * The caller a bearer token authenticates. Throws TokenError (answer 401) for a token that
   * authenticates no one, SigningKeysUnavailableError (answer 503) when the JWKS cannot be fetched.
   */
  verify(token: string): Promise<Caller>;
}

/** What a JWKS may sign with. Never a symmetric algorithm: a public key is not a secret. */
export const JWKS_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'];
/** What the shared secret may sign with. */
export const SECRET_ALGORITHMS = ['HS256'];

/**
 * Verifies bearer tokens against a JWKS and/or a shared secret (built once, at start: it holds the
 * JWKS cache). The token's header only routes it: `alg: HS256` goes to the secret when there is
 * one, anything else to the JWKS when there is one, else to the other. Which algorithms are
 * accepted is decided by the key kind (`algorithms` given to jose for each), never by the token:
 * so no `none`, and no HS256 "signed" with a public key, whatever the header says.
 */
export function createTokenVerifier(o: TokenVerifierOptions): TokenVerifier {
  if (!o.jwksUrl && !o.secret) throw new Error('createTokenVerifier needs a jwksUrl and/or a secret');
  const jwks = o.jwksUrl ? createJwksKeys(o.jwksUrl) : undefined;
  const secret = o.secret ? new TextEncoder().encode(o.secret) : undefined;
  // exp is required of every token: jose checks it only when present, and a token that never
  // expires cannot be taken back. aud/iss/sub depend on the role: see callerFromClaims.
  const common: JWTVerifyOptions = { clockTolerance: o.clockToleranceS, requiredClaims: ['exp'] };
  const policy = { audience: o.audience, issuer: o.issuer, allowAnonymous: o.allowAnonymous };

  return {
    async verify(token) {
      if (typeof token !== 'string' || token === '') throw new TokenError('token missing');
      let alg: unknown;
      let kid: unknown;
      try {
        ({ alg, kid } = decodeProtectedHeader(token));
      } catch {
        throw new TokenError('token malformed');
      }
      let claims: JWTPayload;
      try {
        if (secret && (alg === 'HS256' || !jwks)) {
          ({ payload: claims } = await jwtVerify(token, secret, { ...common, algorithms: SECRET_ALGORITHMS }));
        } else {
          // Key chosen by kid: with no kid jose would take the only key of the right type, a guess.
          if (typeof kid !== 'string' || kid === '') throw new TokenError('token has no key id');
          ({ payload: claims } = await jwtVerify(token, jwks as JWTVerifyGetKey, { ...common, algorithms: JWKS_ALGORITHMS }));
        }
      } catch (err) {
        throw tokenErrorFrom(err);
      }
      return callerFromClaims(claims, policy);
    },
  };
}

/** jose's errors in a client's words. Anything unexpected is a refusal too, never a pass. */
function tokenErrorFrom(err: unknown): TokenError | SigningKeysUnavailableError {
  if (err instanceof TokenError || err instanceof SigningKeysUnavailableError) return err;
  if (err instanceof errors.JWTExpired) return new TokenError('token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return new TokenError('token not yet valid');
    if (err.reason === 'missing') return new TokenError(`token has no ${err.claim} claim`);
    return new TokenError(`token ${err.claim} claim invalid`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenError('token signature invalid');
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenError('token algorithm not accepted');
  if (err instanceof errors.JOSENotSupported) return new TokenError('token algorithm not supported');
  if (err instanceof errors.JWKSNoMatchingKey) return new TokenError('unknown signing key');
  if (err instanceof errors.JWKSMultipleMatchingKeys) return new TokenError('ambiguous signing key');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new TokenError('token malformed');
  return new TokenError('token not accepted');
}
