import { randomUUID } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { base64url, exportJWK, exportSPKI, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';

export type AsymmetricAlg = 'ES256' | 'RS256' | 'EdDSA';

/** What the next fetch of the key set gets instead of it, in the order scripted, one per fetch. */
export type JwksFault =
  | 'server_error' // 500
  | 'not_found' // 404
  | 'malformed_json' // 200 with a truncated JSON body
  | 'not_a_key_set'; // 200 with JSON that is not { keys: [...] }

export interface FakeJwksKeySpec {
  kid: string;
  alg: AsymmetricAlg;
  /** false: the key can sign but is not in the set (a kid the JWKS never had). Default true. */
  published?: boolean;
  /** false: its JWK is published without "alg", as some providers do. Default true. */
  publishAlg?: boolean;
}

export interface FakeSignOptions {
  /** The key to sign with; default: the first key of the set. */
  kid?: string;
  /** The header's `alg`; default: the key's. Another one (PS256 with an RSA key) tests refusals. */
  alg?: string;
  /** The header's `kid`, when it should differ from the signing key's; null: no kid in the header. */
  headerKid?: string | null;
  /**
   * From now: seconds (negative: in the past) or a jose time span ('1h', '-2 min'). Default '1h';
   * null: no exp claim. Ignored when the claims carry exp.
   */
  expiresIn?: string | number | null;
  /** From now, as expiresIn. No nbf claim unless given. */
  notBefore?: string | number;
}

export interface FakeJwks {
  /** The JWKS URL: http://127.0.0.1:port/.well-known/jwks.json */
  url: string;
  /** The kids currently published. */
  kids(): string[];
  sign(claims: Record<string, unknown>, o?: FakeSignOptions): Promise<string>;
  /** Publishes new keys and/or unpublishes keys (which can still sign: tokens of a removed key). */
  rotate(o: { add?: FakeJwksKeySpec[]; remove?: string[] }): Promise<void>;
  /** Publishes a JWK as given, one this fake cannot sign with (a weak or broken key). */
  publishRaw(jwk: JWK): void;
  /** The public key as SPKI PEM: what an alg-confusion attacker uses as an HMAC secret. */
  publicKeyPem(kid: string): Promise<string>;
  publicJwk(kid: string): JWK;
  script(...faults: JwksFault[]): void;
  /** Requests for the key set so far, faulted ones included. */
  fetches(): number;
  close(): Promise<void>;
}

export const JWKS_PATH = '/.well-known/jwks.json';

/** The keys a fresh fake publishes, one of each kind. */
export const DEFAULT_KEYS: readonly FakeJwksKeySpec[] = [
  { kid: 'es256-1', alg: 'ES256' },
  { kid: 'rs256-1', alg: 'RS256' },
  { kid: 'ed25519-1', alg: 'EdDSA' },
];

interface SigningKey {
  spec: FakeJwksKeySpec;
  privateKey: CryptoKey;
  /** To sign with another algorithm than the key's (a WebCrypto key is bound to one). */
  privateJwk: JWK;
  publicKey: CryptoKey;
  jwk: JWK;
}

/** A JWKS on 127.0.0.1 as Supabase Auth serves it, with keys that sign tokens for tests. */
export async function startFakeJwks(keys: readonly FakeJwksKeySpec[] = DEFAULT_KEYS): Promise<FakeJwks> {
  const signing = new Map<string, SigningKey>();
  const published: string[] = [];
  const raw: JWK[] = [];
  const faults: JwksFault[] = [];
  let fetches = 0;

  async function add(spec: FakeJwksKeySpec) {
    if (signing.has(spec.kid)) throw new Error(`fake jwks: kid ${spec.kid} already exists`);
    const { privateKey, publicKey } = await generateKeyPair(spec.alg, { extractable: true, ...(spec.alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    const privateJwk = await exportJWK(privateKey);
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: spec.kid, use: 'sig' };
    if (spec.publishAlg !== false) jwk.alg = spec.alg;
    signing.set(spec.kid, { spec, privateKey, privateJwk, publicKey, jwk });
    if (spec.published !== false) published.push(spec.kid);
  }
  for (const spec of keys) await add(spec);

  function key(kid: string): SigningKey {
    const k = signing.get(kid);
    if (!k) throw new Error(`fake jwks: no key ${kid}`);
    return k;
  }

  const server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://fake').pathname !== JWKS_PATH) {
      return answer(res, 404, '{"error":"not found"}');
    }
    fetches++;
    const fault = faults.shift();
    if (fault === 'server_error') return answer(res, 500, '{"error":"internal"}');
    if (fault === 'not_found') return answer(res, 404, '{"error":"not found"}');
    if (fault === 'malformed_json') return answer(res, 200, '{"keys":[{"kty":');
    if (fault === 'not_a_key_set') return answer(res, 200, '{"keys":"none"}');
    answer(res, 200, JSON.stringify({ keys: [...published.map((kid) => key(kid).jwk), ...raw] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${JWKS_PATH}`,
    kids: () => [...published],
    async sign(claims, o = {}) {
      const k = key(o.kid ?? published[0] ?? [...signing.keys()][0]!);
      const headerKid = o.headerKid === undefined ? k.spec.kid : o.headerKid;
      const alg = o.alg ?? k.spec.alg;
      const privateKey = alg === k.spec.alg ? k.privateKey : await importJWK(k.privateJwk, alg);
      const header = { alg, typ: 'JWT', ...(headerKid === null ? {} : { kid: headerKid }) };
      return mint(new SignJWT(claims).setProtectedHeader(header), claims, o).sign(privateKey);
    },
    async rotate({ add: adding = [], remove = [] }) {
      for (const spec of adding) await add(spec);
      for (const kid of remove) {
        const i = published.indexOf(kid);
        if (i >= 0) published.splice(i, 1);
      }
    },
    publishRaw: (jwk) => void raw.push(jwk),
    publicKeyPem: (kid) => exportSPKI(key(kid).publicKey),
    publicJwk: (kid) => ({ ...key(kid).jwk }),
    script: (...more) => void faults.push(...more),
    fetches: () => fetches,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** A token signed with a shared secret (the legacy Supabase JWT secret, as its UTF-8 bytes). */
export function signHs256(
  secret: string | Uint8Array,
  claims: Record<string, unknown>,
  o: Omit<FakeSignOptions, 'alg' | 'kid'> & { alg?: 'HS256' | 'HS384' | 'HS512'; headerKid?: string | null } = {},
): Promise<string> {
  const key = typeof secret === 'string' ? new TextEncoder().encode(secret) : secret;
  const header = { alg: o.alg ?? 'HS256', typ: 'JWT', ...(o.headerKid ? { kid: o.headerKid } : {}) };
  return mint(new SignJWT(claims).setProtectedHeader(header), claims, o).sign(key);
}

/** An unsecured token (`alg: none`, empty signature), with whatever header members are given. */
export function signNone(claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (v: unknown) => base64url.encode(JSON.stringify(v));
  return `${part({ alg: 'none', typ: 'JWT', ...header })}.${part({ iat: now, exp: now + 3600, ...claims })}.`;
}

/**
 * A project's legacy API key, as Supabase makes them: `{ iss: "supabase", ref, role, iat, exp }`,
 * ten years long, no aud, no sub, HS256 with the project's JWT secret.
 */
export function supabaseLegacyKey(secret: string, role: 'anon' | 'service_role', ref = 'sceneworkstest'): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return signHs256(secret, { iss: 'supabase', ref, role, iat, exp: iat + 10 * 365 * 86_400 });
}

/** The claims of a Supabase Auth access token for a signed-in user (override any of them). */
export function supabaseUserClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sub: randomUUID(),
    aud: 'authenticated',
    role: 'authenticated',
    aal: 'aal1',
    session_id: randomUUID(),
    email: 'user@example.test',
    phone: '',
    is_anonymous: false,
    app_metadata: { provider: 'email', providers: ['email'] },
    user_metadata: {},
    ...overrides,
  };
}

function mint(jwt: SignJWT, claims: Record<string, unknown>, o: Omit<FakeSignOptions, 'alg' | 'kid'>): SignJWT {
  if (claims.iat === undefined) jwt.setIssuedAt();
  if (claims.exp === undefined && o.expiresIn !== null) jwt.setExpirationTime(fromNow(o.expiresIn ?? '1h'));
  if (o.notBefore !== undefined) jwt.setNotBefore(fromNow(o.notBefore));
  return jwt;
}

/** jose reads a number as an absolute time: here a number is seconds from now. */
function fromNow(span: string | number): string | number {
  return typeof span === 'number' ? Math.floor(Date.now() / 1000) + span : span;
}

function answer(res: ServerResponse, status: number, body: string) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' });
  res.end(body);
}
