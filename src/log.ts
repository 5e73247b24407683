import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

const CENSOR = '[Redacted]';

/**
 * Fields that hold a secret whatever their value's type, censored by pino's redact where such
 * fields sit: at the top of a log object, in headers, in a logged config or options object.
 * Explicit paths, no wildcards: a path absent from a line costs nothing, a wildcard costs every
 * line (measured: 1 µs against 20-50 µs a line). String values at any other depth are left to
 * scrubSecrets.
 */
const SECRET_FIELDS = [
  'authorization',
  'Authorization',
  'cookie',
  'apikey',
  'apiKey',
  'api_key',
  'x-api-key',
  'serviceRoleKey',
  'access_token',
  'accessToken',
  'refresh_token',
  'token',
  'signature',
  'secret',
  'password',
  'OPENAI_API_KEY',
  'REPLICATE_API_TOKEN',
  'GEMINI_API_KEY',
  'STABILITY_API_KEY',
  'SUPABASE_SERVICE_ROLE_KEY',
  'JWT_SECRET',
  'FILES_URL_SECRET',
  'WEBHOOK_SECRET',
  'METRICS_TOKEN',
];
const SECRET_CONTAINERS = ['', 'headers', 'req.headers', 'request.headers', 'config', 'options'];
const REDACT_PATHS = SECRET_CONTAINERS.flatMap((container) =>
  SECRET_FIELDS.map((field) => {
    const segment = /^[A-Za-z_$][\w$]*$/.test(field) ? field : `["${field}"]`;
    return container === '' ? segment : segment.startsWith('[') ? `${container}${segment}` : `${container}.${segment}`;
  }),
);

/**
 * Secrets inside the serialized line, wherever they are: in a message, an error's message or
 * stack, a URL, a field at any depth. One pass of one regular expression over each line, so it
 * stays cheap; what it finds becomes [Redacted] and the rest of the line is kept. Alternatives:
 * - a string field whose name says secret (OPENAI_API_KEY, serviceRoleKey, x-api-key, …), also
 *   as JSON quoted inside a string;
 * - an HTTP credential: `Bearer …`, `Basic …`;
 * - a credential in a query string or form: token=, access_token=, signature=, apikey=, key=, …;
 * - a JWT (Supabase keys and user tokens are JWTs), and API keys recognisable by their prefix;
 * - the password of a URL (postgres://user:password@host).
 * Each alternative stops at a quote or a backslash, so the line stays valid JSON.
 */
const SECRET_NAME = String.raw`[^"\\]*(?:authorization|api[-_]?key|secret|password|token|signature|service_?role_?key|cookie)[^"\\]*`;
const SECRETS = new RegExp(
  [
    String.raw`"(?<field>${SECRET_NAME})":"(?:[^"\\]|\\.)*"`,
    // The same inside a string: JSON quoted in an error message (a vendor's answer body).
    String.raw`\\"(?<quoted>${SECRET_NAME})\\":\s*\\"[^"\\]*`,
    String.raw`\b(?<scheme>bearer|basic)\s+[A-Za-z0-9._~+/=-]+`,
    String.raw`\b(?<param>access_token|refresh_token|id_token|token|signature|sig|apikey|api_key|key)=[^&\s"\\#]+`,
    String.raw`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`,
    String.raw`\b(?:sk-|sk_|r8_|sb_secret_|whsec_|AIza)[A-Za-z0-9_-]{12,}`,
    String.raw`(?<userinfo>\b[a-z][a-z0-9+.-]*://[^:/?#@\s"\\]*):[^@/?#\s"\\]+@`,
  ].join('|'),
  'gi',
);

/** The line with every secret SECRETS finds replaced by [Redacted]. */
export function scrubSecrets(line: string): string {
  return line.replace(SECRETS, (_match, ...args: unknown[]) => {
    const groups = args.at(-1) as Record<string, string | undefined>;
    if (groups.field !== undefined) return `"${groups.field}":"${CENSOR}"`;
    if (groups.quoted !== undefined) return `\\"${groups.quoted}\\":\\"${CENSOR}`;
    if (groups.scheme !== undefined) return `${groups.scheme} ${CENSOR}`;
    if (groups.param !== undefined) return `${groups.param}=${CENSOR}`;
    if (groups.userinfo !== undefined) return `${groups.userinfo}:${CENSOR}@`;
    return CENSOR;
  });
}

/**
 * One JSON line per event, on stdout unless `destination` is given (tests capture the log this
 * way). No secret reaches a line: pino's redact paths censor known secret fields of any type,
 * and every line is scrubbed of the secrets a string can carry (see SECRETS) before it is written.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'sceneworks' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    hooks: { streamWrite: scrubSecrets },
  };
  return destination ? pino(options, destination) : pino(options);
}
