import type { JWTPayload } from 'jose';
import { TokenError } from './errors.ts';

export type Caller = { kind: 'user'; userId: string; anonymous: boolean } | { kind: 'operator' };

export interface ClaimsPolicy {
  audience: string;
  issuer?: string | undefined;
  allowAnonymous: boolean;
}

/** The `iss` of Supabase's legacy API keys (the anon and service_role JWTs of a project). */
export const LEGACY_API_KEY_ISSUER = 'supabase';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Who a verified token's claims say is calling. Signature, `exp` (required) and `nbf` were checked
 * before: this is the policy on what a validly signed token may claim.
 *
 * - `role: "service_role"` is an operator (an app's backend). Supabase's legacy service_role key is
 *   `{ iss: "supabase", ref, role: "service_role", iat, exp }`: no `aud`, no `sub`, and an `iss`
 *   that is not the Auth URL. So for an operator `aud`, `iss` and `sub` are not required; but an
 *   `aud` that is present must name our audience (a token minted for another service is not ours),
 *   and an `iss` that is present must be the configured issuer or "supabase". `sub` is ignored: an
 *   operator acts for a user only by naming one (X-Owner-Id).
 * - `role: "anon"` (the legacy anon key, or any anon-role token) authenticates no one, `sub` or not.
 * - Any other role is a user ("authenticated", or a custom role from an access-token hook): `aud`
 *   must name our audience, `iss` must equal the issuer when one is configured, `sub` must be a
 *   UUID (returned lower-cased, as PostgreSQL prints uuids) and is the owner; `is_anonymous`, when
 *   present, must be a boolean, and `true` is refused unless anonymous users are allowed.
 */
export function callerFromClaims(claims: JWTPayload, policy: ClaimsPolicy): Caller {
  if (claims.role === 'service_role') {
    if (claims.aud !== undefined && !audienceIncludes(claims.aud, policy.audience)) {
      throw new TokenError('token audience not accepted');
    }
    if (
      policy.issuer !== undefined &&
      claims.iss !== undefined &&
      claims.iss !== policy.issuer &&
      claims.iss !== LEGACY_API_KEY_ISSUER
    ) {
      throw new TokenError('token issuer not accepted');
    }
    return { kind: 'operator' };
  }
  if (claims.role === 'anon') throw new TokenError('anon key does not identify a user');

  if (claims.aud === undefined) throw new TokenError('token has no aud claim');
  if (!audienceIncludes(claims.aud, policy.audience)) throw new TokenError('token audience not accepted');
  if (policy.issuer !== undefined) {
    if (claims.iss === undefined) throw new TokenError('token has no iss claim');
    if (claims.iss !== policy.issuer) throw new TokenError('token issuer not accepted');
  }
  if (claims.sub === undefined) throw new TokenError('token has no sub claim');
  if (typeof claims.sub !== 'string' || !UUID.test(claims.sub)) throw new TokenError('sub is not a UUID');

  const anonymous = claims.is_anonymous ?? false;
  if (typeof anonymous !== 'boolean') throw new TokenError('is_anonymous is not a boolean');
  if (anonymous && !policy.allowAnonymous) throw new TokenError('anonymous users are not accepted');
  return { kind: 'user', userId: claims.sub.toLowerCase(), anonymous };
}

function audienceIncludes(aud: unknown, audience: string): boolean {
  return typeof aud === 'string' ? aud === audience : Array.isArray(aud) && aud.includes(audience);
}
