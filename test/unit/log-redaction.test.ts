import { describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../src/log.ts';

/**
 * No secret reaches a log line: each case logs secrets the way the service could (fields, headers,
 * URLs, error messages and stacks, child bindings) through the real logger into a captured
 * stream, then checks the secret is gone and the rest of the line is still there.
 */
function capture(): { log: Logger; text: () => string; lines: () => Record<string, any>[] } {
  const chunks: string[] = [];
  const log = createLogger('info', { write: (chunk: string) => void chunks.push(chunk) });
  return {
    log,
    text: () => chunks.join(''),
    // Every line is still JSON after the scrubbing.
    lines: () => chunks.join('').trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>),
  };
}

function expectGone(text: string, secrets: string[]) {
  for (const secret of secrets) expect(text, secret).not.toContain(secret);
}

// Made-up credentials of the shapes the service meets.
const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3OC0xMjM0LTQxMjMtODEyMy0xMjM0NTY3ODkwMTIiLCJyb2xlIjoiYXV0aGVudGljYXRlZCJ9.c2lnbmF0dXJlLW9mLXRoZS10ZXN0LXRva2Vu';
const JWT_SIGNATURE = 'c2lnbmF0dXJlLW9mLXRoZS10ZXN0LXRva2Vu';

describe('log redaction', () => {
  it('Authorization headers, whatever their value and wherever headers are logged', () => {
    const { log, text, lines } = capture();
    log.info({ headers: { authorization: 'Bearer opaque-header-token-1', 'content-type': 'application/json' } }, 'outgoing');
    log.info({ req: { headers: { Authorization: 'Basic dXNlcjpob3JzZS1iYXR0ZXJ5', host: 'sceneworks.test' } } }, 'incoming');
    // Not a string: only the redact paths can catch it.
    log.info({ headers: { authorization: ['token-in-an-array-1'] }, authorization: { scheme: 'Bearer', credentials: 'token-in-an-object-1' } }, 'odd');
    expectGone(text(), ['opaque-header-token-1', 'dXNlcjpob3JzZS1iYXR0ZXJ5', 'token-in-an-array-1', 'token-in-an-object-1']);
    const [outgoing, incoming, odd] = lines();
    expect(outgoing!.headers).toEqual({ authorization: '[Redacted]', 'content-type': 'application/json' });
    expect(incoming!.req.headers.host).toBe('sceneworks.test');
    expect(odd!.msg).toBe('odd');
  });

  it('API keys: apikey headers, *_API_KEY settings at any depth, the service role key', () => {
    const { log, text, lines } = capture();
    log.info({ apikey: 'anon-key-value-1', serviceRoleKey: 'service-role-value-1', 'x-api-key': 'x-api-key-value-1' }, 'supabase client');
    log.info({ config: { OPENAI_API_KEY: 'openai-key-value-1', PORT: 3000 } }, 'config');
    log.info({ provider: { name: 'stability', settings: { STABILITY_API_KEY: 'stability-key-value-1', model: 'sd3' } } }, 'provider');
    log.info({ options: { apiKey: { value: 'key-in-an-object-1' } } }, 'client options');
    expectGone(text(), ['anon-key-value-1', 'service-role-value-1', 'x-api-key-value-1', 'openai-key-value-1', 'stability-key-value-1', 'key-in-an-object-1']);
    const [, config, provider] = lines();
    expect(config!.config.PORT).toBe(3000);
    expect(provider!.provider.settings).toEqual({ STABILITY_API_KEY: '[Redacted]', model: 'sd3' });
  });

  it('signed-URL tokens and access_token, in URLs and as fields', () => {
    const { log, text, lines } = capture();
    log.info({ url: 'https://abc.supabase.co/storage/v1/object/sign/images/k.png?token=signed-url-token-1' }, 'signed');
    log.info({ url: 'http://sceneworks.test/files/projects/a.png?expires=1790000000&signature=file-url-signature-1' }, 'file url');
    log.info({ path: '/projects/1/events?access_token=query-access-token-1&x=1' }, 'events');
    log.info({ access_token: 'field-access-token-1', token: 'plain-token-field-1' }, 'token fields');
    expectGone(text(), ['signed-url-token-1', 'file-url-signature-1', 'query-access-token-1', 'field-access-token-1', 'plain-token-field-1']);
    const [signed, file, events] = lines();
    expect(signed!.url).toBe('https://abc.supabase.co/storage/v1/object/sign/images/k.png?token=[Redacted]');
    expect(file!.url).toBe('http://sceneworks.test/files/projects/a.png?expires=1790000000&signature=[Redacted]');
    expect(events!.path).toBe('/projects/1/events?access_token=[Redacted]&x=1');
  });

  it("errors: a JWT, a bearer token, ?token= and access_token= in the message never reach the line (message or stack)", () => {
    const { log, text, lines } = capture();
    log.error({ err: new Error(`token rejected: ${JWT}`) }, 'auth failed');
    log.error({ err: new Error('upstream said 401 for Authorization: Bearer opaque-bearer-in-error-1') }, 'provider failed');
    log.error({ err: new Error('GET https://cdn.example/a.png?token=token-in-error-1 failed') }, 'fetch failed');
    log.warn({ err: new Error('stream closed; access_token=access-token-in-error-1 expired') }, 'sse');
    log.error(new Error(`bare error with ${JWT}`));
    expectGone(text(), [JWT_SIGNATURE, 'opaque-bearer-in-error-1', 'token-in-error-1', 'access-token-in-error-1']);
    const all = lines();
    expect(all[0]!.err.message).toBe('token rejected: [Redacted]');
    expect(all[0]!.err.stack).toContain('token rejected: [Redacted]');
    expect(all[0]!.msg).toBe('auth failed');
    expect(all[1]!.err.message).toBe('upstream said 401 for Authorization: Bearer [Redacted]');
    expect(all[2]!.err.message).toBe('GET https://cdn.example/a.png?token=[Redacted] failed');
    expect(all[3]!.err.message).toBe('stream closed; access_token=[Redacted] expired');
    expect(all[4]!.msg).toBe('bare error with [Redacted]');
  });

  it('a JSON answer quoted in an error message, vendor keys and URL passwords', () => {
    const { log, text, lines } = capture();
    log.error({ err: new Error('replicate answered 422: {"detail":"bad input","api_key": "quoted-key-value-1"}') }, 'provider failed');
    log.error({ err: new Error('openai: invalid key sk-proj-AbCdEf0123456789xyz') }, 'provider failed');
    log.error({ err: new Error('connect postgres://sceneworks:db-password-1@db.internal:5432/app refused') }, 'db');
    expectGone(text(), ['quoted-key-value-1', 'sk-proj-AbCdEf0123456789xyz', 'db-password-1']);
    const [quoted, , db] = lines();
    expect(quoted!.err.message).toBe('replicate answered 422: {"detail":"bad input","api_key":"[Redacted]"}');
    expect(db!.err.message).toBe('connect postgres://sceneworks:[Redacted]@db.internal:5432/app refused');
  });

  it('messages and child bindings are scrubbed too', () => {
    const { log, text, lines } = capture();
    const child = log.child({ requestId: 'req-1', authorization: `Bearer ${JWT}` });
    child.info(`verified ${JWT} for the request`);
    expectGone(text(), [JWT_SIGNATURE]);
    const [line] = lines();
    expect(line).toMatchObject({ requestId: 'req-1', msg: 'verified [Redacted] for the request', service: 'sceneworks', level: 30 });
  });

  it('leaves ordinary lines alone', () => {
    const { log, lines } = capture();
    const fields = { requestId: 'a1b2', method: 'GET', path: '/projects/5b0e', status: 200, ms: 1.5, storageKey: 'projects/p/scene-1/image-0.png', idempotencyKey: 'k-1' };
    log.info(fields, 'request');
    expect(lines()[0]).toMatchObject({ ...fields, msg: 'request' });
  });
});
