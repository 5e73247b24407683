import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  // No runner: these tests are about what is accepted and stored, not generated.
  t = await startTestApp({}, { runner: false });
});
afterAll(() => t.close());

function expectError(res: { status: number; body: any; headers: Headers }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(res.body.error).toMatchObject({ code, message: expect.any(String), requestId: expect.any(String), details: expect.any(Array) });
  expect(res.headers.get('x-request-id')).toBe(res.body.error.requestId);
}

const ok = { scenes: [{ prompt: 'a cat' }] };

describe('POST /projects validation', () => {
  const cases: [string, unknown, string[]?][] = [
    ['unknown top-level field', { ...ok, imagesPerscene: 2 }, ['imagesPerscene']],
    ['no scenes', { scenes: [] }, ['scenes']],
    ['scenes missing', { title: 'x' }, ['scenes']],
    ['too many scenes', { scenes: Array.from({ length: 201 }, () => ({ prompt: 'p' })) }, ['scenes']],
    ['empty prompt', { scenes: [{ prompt: '' }] }, ['scenes', '0', 'prompt']],
    ['blank prompt', { scenes: [{ prompt: '   \n ' }] }, ['scenes', '0', 'prompt']],
    ['prompt too long', { scenes: [{ prompt: 'x'.repeat(4001) }] }, ['scenes', '0', 'prompt']],
    ['prompt not a string', { scenes: [{ prompt: 42 }] }, ['scenes', '0', 'prompt']],
    ['duplicate explicit index', { scenes: [{ prompt: 'a', index: 3 }, { prompt: 'b', index: 3 }] }, ['scenes', '1', 'index']],
    ['explicit index equal to another scene position', { scenes: [{ prompt: 'a', index: 2 }, { prompt: 'b' }] }, ['scenes', '1', 'index']],
    ['negative index', { scenes: [{ prompt: 'a', index: -1 }] }, ['scenes', '0', 'index']],
    ['fractional index', { scenes: [{ prompt: 'a', index: 1.5 }] }, ['scenes', '0', 'index']],
    ['imagesPerScene 0', { ...ok, imagesPerScene: 0 }, ['imagesPerScene']],
    ['imagesPerScene 9', { ...ok, imagesPerScene: 9 }, ['imagesPerScene']],
    ['imagesPerScene as a string', { ...ok, imagesPerScene: '2' }, ['imagesPerScene']],
    ['wrong aspect ratio', { ...ok, aspectRatio: '21:9' }, ['aspectRatio']],
    ['title too long', { ...ok, title: 't'.repeat(201) }, ['title']],
    ['style too long', { ...ok, style: 's'.repeat(201) }, ['style']],
    ['metadata not an object', { ...ok, metadata: [1, 2] }, ['metadata']],
    ['metadata over 16 KiB', { ...ok, metadata: { blob: 'x'.repeat(16 * 1024) } }, ['metadata']],
    ['scene not an object', { scenes: ['a cat'] }, ['scenes', '0']],
    ['body an array', [ok], []],
    ['unconfigured provider', { ...ok, provider: 'midjourney' }, ['provider']],
  ];
  for (const [name, body, path] of cases) {
    it(`refuses ${name} with 400 VALIDATION_FAILED`, async () => {
      const res = await t.call('POST', '/projects', body);
      expectError(res, 400, 'VALIDATION_FAILED');
      if (path && path.length > 0) {
        expect(res.body.error.details.map((d: any) => d.path.map(String).join('.'))).toContain(path.join('.'));
      }
    });
  }

  it('refuses malformed JSON with 400', async () => {
    expectError(await t.call('POST', '/projects', '{"scenes": [', { 'content-type': 'application/json' }), 400, 'VALIDATION_FAILED');
  });

  it('refuses a missing body with 400', async () => {
    expectError(await t.call('POST', '/projects', undefined), 400, 'VALIDATION_FAILED');
  });

  it('refuses a non-JSON content type with 415', async () => {
    expectError(await t.call('POST', '/projects', JSON.stringify(ok), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectError(await t.call('POST', '/projects', 'scenes=1', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses a body over the size limit with 413', async () => {
    const huge = { scenes: Array.from({ length: 200 }, () => ({ prompt: 'p', filler: 'x'.repeat(30_000) })) };
    expectError(await t.call('POST', '/projects', huge), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('stores nothing for a refused request', async () => {
    const [{ n }] = (await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`) as unknown as [{ n: number }];
    await t.call('POST', '/projects', { scenes: [{ prompt: 'a' }, { prompt: '' }] });
    const [{ n: after }] = (await t.db.sql`SELECT count(*)::int AS n FROM content_creation_requests`) as unknown as [{ n: number }];
    expect(after).toBe(n);
  });

  it('accepts index 0, keeps every extra scene field verbatim and applies defaults', async () => {
    const scenes = [{ prompt: '  padded  ', index: 0, narration: 'n', shots: [{ cam: 'wide' }], nul: null }, { prompt: 'b' }];
    const res = await t.call('POST', '/projects', { scenes });
    expect(res.status).toBe(202);
    expect(res.body.settings).toEqual({ imagesPerScene: 1, aspectRatio: '16:9', style: null, provider: 'local', model: null });
    // Every scene comes back as sent, plus its effective index; the stored JSON is exactly what was sent.
    expect(res.body.generatedOutput.scenes.map(({ imageUrls, images, staleImages, ...rest }: any) => rest)).toEqual([scenes[0], { ...scenes[1], index: 2 }]);
    const [row] = await t.db.sql<{ generatedOutput: unknown }[]>`SELECT generated_output FROM content_creation_requests WHERE id = ${res.body.id}`;
    expect(row!.generatedOutput).toEqual({ scenes });
  });
});

describe('other inputs', () => {
  it('answers 404, never 403 or 500, for unknown or malformed ids', async () => {
    expectError(await t.call('GET', '/projects/8d6f1f55-1111-4a4a-9a9a-000000000000'), 404, 'NOT_FOUND');
    expectError(await t.call('GET', '/projects/not-a-uuid'), 404, 'NOT_FOUND');
    expectError(await t.call('GET', '/project/not-a-uuid'), 404, 'NOT_FOUND');
    expectError(await t.call('POST', '/projects/8d6f1f55-1111-4a4a-9a9a-000000000000/generate'), 404, 'NOT_FOUND');
    expectError(await t.call('POST', '/projects/8d6f1f55-1111-4a4a-9a9a-000000000000/scenes/1/regenerate'), 404, 'NOT_FOUND');
    expectError(await t.call('GET', '/nothing-here'), 404, 'NOT_FOUND');
  });

  it('validates regenerate bodies', async () => {
    const created = await t.call('POST', '/projects', ok);
    const path = `/projects/${created.body.id}/scenes/1/regenerate`;
    expectError(await t.call('POST', path, { prompt: '' }), 400, 'VALIDATION_FAILED');
    expectError(await t.call('POST', path, { imagesPerScene: 9 }), 400, 'VALIDATION_FAILED');
    expectError(await t.call('POST', path, { colour: 'red' }), 400, 'VALIDATION_FAILED');
    expectError(await t.call('POST', path, '{', { 'content-type': 'application/json' }), 400, 'VALIDATION_FAILED');
    expectError(await t.call('POST', path, 'prompt=x', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectError(await t.call('POST', `/projects/${created.body.id}/scenes/99/regenerate`), 404, 'NOT_FOUND');
    expectError(await t.call('POST', `/projects/${created.body.id}/scenes/abc/regenerate`), 404, 'NOT_FOUND');
  });

  it('validates list queries', async () => {
    expectError(await t.call('GET', '/projects?limit=0'), 400, 'VALIDATION_FAILED');
    expectError(await t.call('GET', '/projects?limit=101'), 400, 'VALIDATION_FAILED');
    expectError(await t.call('GET', '/projects?status=done'), 400, 'VALIDATION_FAILED');
    expectError(await t.call('GET', '/projects?cursor=garbage'), 400, 'VALIDATION_FAILED');
    expectError(await t.call('GET', '/projects?colour=red'), 400, 'VALIDATION_FAILED');
  });

  it('echoes a client request id', async () => {
    const res = await t.call('GET', '/healthz', undefined, { 'x-request-id': 'client-abc-123' });
    expect(res.headers.get('x-request-id')).toBe('client-abc-123');
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('publishes OpenAPI 3.1 from the validating schemas, and a docs page', async () => {
    const res = await t.call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining(['/projects', '/projects/{id}', '/project/{id}', '/projects/{id}/generate', '/projects/{id}/scenes/{sceneIndex}/regenerate']),
    );
    const create = res.body.components.schemas.CreateProject;
    expect(create.required).toContain('scenes');
    expect(create.additionalProperties).toBe(false);
    const docs = await t.app.request('/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toContain('text/html');
  });

  it('reports readiness from the database', async () => {
    expect((await t.call('GET', '/readyz')).status).toBe(200);
  });
});
