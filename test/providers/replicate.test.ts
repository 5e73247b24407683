import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AspectRatio } from '../../src/generation/aspect-ratio.ts';
import { ProviderError, type GenerateRequest, type ImageProvider } from '../../src/providers/provider.ts';
import { createReplicateProvider } from '../../src/providers/replicate.ts';
import { startFakeReplicate, type FakeReplicate } from '../fakes/replicate.ts';

const MODEL = 'black-forest-labs/flux-schnell';
let fake: FakeReplicate;
let provider: ImageProvider;

function request(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: 'a lighthouse at dusk',
    fullPrompt: 'a lighthouse at dusk, oil painting',
    aspectRatio: '16:9',
    width: 1344,
    height: 768,
    seed: 4242,
    model: null,
    signal: AbortSignal.timeout(10_000),
    ...over,
  };
}

function replicate(over: { apiToken?: string; pollIntervalMs?: number } = {}) {
  return createReplicateProvider({ apiToken: fake.token, baseUrl: fake.url, model: MODEL, pollIntervalMs: 5, ...over });
}

async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => expect.fail('generate() resolved'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

const calls = () => fake.requests.map((r) => `${r.method} ${r.path.replace(/[0-9a-f]{26}/, ':id')}`);
const CREATE = `POST /v1/models/${MODEL}/predictions`;

beforeAll(async () => {
  fake = await startFakeReplicate();
  provider = replicate();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
});

describe('replicate provider', () => {
  it('creates with Prefer: wait, downloads the output and probes its real size', async () => {
    const image = await provider.generate(request());

    expect(calls()).toEqual([CREATE, 'GET /files/:id/out-0.png']);
    const create = fake.requests[0]!;
    expect(create.headers.authorization).toBe(`Bearer ${fake.token}`);
    expect(create.headers.prefer).toBe('wait');
    expect(create.body).toEqual({
      input: { prompt: 'a lighthouse at dusk, oil painting', aspect_ratio: '16:9', seed: 4242, num_outputs: 1, output_format: 'png' },
    });
    const prediction = fake.predictions().at(-1)!;
    expect(image.providerRequestId).toBe(prediction.id);
    expect(fake.requests[1]!.path).toBe(`/files/${prediction.id}/out-0.png`);
    // The fake renders 16:9 as 160×90, not the 1344×768 asked for: the size comes from the bytes.
    expect({ mimeType: image.mimeType, width: image.width, height: image.height }).toEqual({ mimeType: 'image/png', width: 160, height: 90 });
    expect(Buffer.from(image.bytes.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
    expect(image.seed).toBe(4242);
    expect(image.model).toBe(MODEL);
    expect(provider.name).toBe('replicate');
    expect(provider.defaultModel).toBe(MODEL);
  });

  it('polls a prediction that Prefer: wait did not see finish', async () => {
    fake.script('slow');
    const image = await provider.generate(request({ aspectRatio: '1:1' }));

    expect(calls()).toEqual([CREATE, 'GET /v1/predictions/:id', 'GET /v1/predictions/:id', 'GET /files/:id/out-0.png']);
    expect(image.providerRequestId).toBe(fake.predictions().at(-1)!.id);
    expect([image.width, image.height]).toEqual([10, 10]);
  });

  it("runs a pinned version ('owner/name:version') through POST /v1/predictions", async () => {
    const image = await provider.generate(request({ model: 'stability-ai/sdxl:39ed52f2a78e934b' }));

    expect(calls()).toEqual(['POST /v1/predictions', 'GET /files/:id/out-0.png']);
    expect(fake.requests[0]!.body.version).toBe('39ed52f2a78e934b');
    expect(fake.requests[0]!.body.input.seed).toBe(4242);
    expect(image.model).toBe('stability-ai/sdxl:39ed52f2a78e934b');
  });

  it('refuses a malformed model name without calling Replicate', async () => {
    const err = await failure(provider.generate(request({ model: 'not a model' })));
    expect([err.code, err.transient]).toEqual(['bad_request', false]);
    expect(fake.requests).toHaveLength(0);
    expect(() => createReplicateProvider({ apiToken: 't', model: 'flux' })).toThrow(/owner\/name/);
  });

  it.each([
    ['429', 2_000],
    ['429-body', 3_000],
    ['429-detail', 30_000],
  ] as const)('classifies a %s as transient rate_limited with its wait', async (fault, retryAfterMs) => {
    fake.script(fault);
    const err = await failure(provider.generate(request()));
    expect([err.code, err.transient, err.status, err.retryAfterMs]).toEqual(['rate_limited', true, 429, retryAfterMs]);
    expect(err.message).toMatch(/throttled/);
    expect(calls()).toEqual([CREATE]);
  });

  it.each(['500', '503'] as const)('classifies a %s as transient server, with one request', async (fault) => {
    fake.script(fault);
    const err = await failure(provider.generate(request()));
    expect([err.code, err.transient, err.status]).toEqual(['server', true, Number(fault)]);
    expect(calls()).toEqual([CREATE]);
  });

  // The test's own timeout is the bound: a provider that ignored the signal would hang here.
  it('gives up on a hung create when the signal fires, as an abort', { timeout: 5_000 }, async () => {
    fake.script('hang');
    const err = await provider.generate(request({ signal: AbortSignal.timeout(300) })).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ProviderError);
    expect((err as Error).name).toBe('TimeoutError');
    expect(calls()).toEqual([CREATE]);
  });

  it('cancels a running prediction when the signal fires while polling', { timeout: 5_000 }, async () => {
    fake.script('stuck');
    const err = await provider.generate(request({ signal: AbortSignal.timeout(200) })).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ProviderError);
    const id = fake.predictions().at(-1)!.id as string;
    await expect.poll(() => fake.predictions().at(-1)!.status).toBe('canceled');
    expect(fake.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual([`/v1/models/${MODEL}/predictions`, `/v1/predictions/${id}/cancel`]);
  });

  it('classifies malformed JSON as transient bad_response', async () => {
    fake.script('malformed');
    const err = await failure(provider.generate(request()));
    expect([err.code, err.transient]).toEqual(['bad_response', true]);
    expect(calls()).toEqual([CREATE]);
  });

  it("classifies an NSFW failure as permanent content_policy, keeping Replicate's words", async () => {
    fake.script('nsfw');
    const err = await failure(provider.generate(request()));
    const prediction = fake.predictions().at(-1)!;
    expect([err.code, err.transient]).toEqual(['content_policy', false]);
    expect(err.message).toContain(prediction.error);
    expect(err.providerRequestId).toBe(prediction.id);
    expect(calls()).toEqual([CREATE]);
  });

  it.each([
    ['failed', /CUDA error: out of memory/],
    ['canceled', /canceled/],
  ] as const)('classifies a %s prediction as transient server', async (fault, message) => {
    fake.script(fault);
    const err = await failure(provider.generate(request()));
    expect([err.code, err.transient, err.providerRequestId]).toEqual(['server', true, fake.predictions().at(-1)!.id]);
    expect(err.message).toMatch(message);
    expect(calls()).toEqual([CREATE]);
  });

  it('classifies a 401 as permanent auth, for a revoked or a wrong token', async () => {
    fake.script('401');
    const revoked = await failure(provider.generate(request()));
    const wrong = await failure(replicate({ apiToken: 'r8_wrong' }).generate(request()));
    for (const err of [revoked, wrong]) {
      expect([err.code, err.transient, err.status]).toEqual(['auth', false, 401]);
      expect(err.message).toMatch(/valid authentication token/);
    }
    expect(calls()).toEqual([CREATE, CREATE]);
  });

  it('classifies an output URL that answers 404 as transient bad_response', async () => {
    fake.script('output-404');
    const err = await failure(provider.generate(request()));
    expect([err.code, err.transient]).toEqual(['bad_response', true]);
    expect(calls()).toEqual([CREATE, 'GET /files/:id/out-0.png']);
  });

  it('reports a connection refused as a transient network error', async () => {
    const err = await failure(createReplicateProvider({ apiToken: 't', baseUrl: 'http://127.0.0.1:1/v1', model: MODEL }).generate(request()));
    expect([err.code, err.transient]).toEqual(['network', true]);
  });
});

describe('replicate provider: input the model refuses', () => {
  it("classifies a 422 as permanent bad_request with Replicate's reasons, in one request", async () => {
    const err = await failure(provider.generate(request({ aspectRatio: '7:5' as AspectRatio })));
    expect([err.code, err.transient, err.status]).toEqual(['bad_request', false, 422]);
    expect(err.message).toBe(`replicate 422: Input validation failed: input.aspect_ratio: aspect_ratio must be one of the following: ${FLUX_ASPECT_RATIOS}`);
    expect(calls()).toEqual([CREATE]);
    expect(fake.predictions().filter((p) => p.input.aspect_ratio === '7:5')).toEqual([]);
  });
});

const FLUX_ASPECT_RATIOS = '"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"';

describe('the fake refuses what Replicate refuses, with its 422', () => {
  async function post(path: string, body: unknown) {
    const res = await fetch(`${fake.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }
  const official = `/models/${MODEL}/predictions`;
  const input = { prompt: 'a lighthouse', aspect_ratio: '16:9', seed: 7, num_outputs: 1, output_format: 'png' };

  it('accepts what the adapter sends, and input keys the schema does not name (Replicate checks only top-level keys)', async () => {
    expect((await post(official, { input })).status).toBe(201);
    expect((await post('/predictions', { version: '39ed52f2a78e934b', input })).status).toBe(201);
    expect((await post(official, { input: { ...input, lora_scale: 0.8 } })).status).toBe(201);
  });

  it.each([
    ['an aspect ratio the model does not take', official, { input: { ...input, aspect_ratio: '7:5' } }, [{ type: 'enum', field: 'input.aspect_ratio', description: `aspect_ratio must be one of the following: ${FLUX_ASPECT_RATIOS}` }]],
    ['a seed that is not an integer', official, { input: { ...input, seed: '7' } }, [{ type: 'invalid_type', field: 'input.seed', description: 'Invalid type. Expected: integer, given: string' }]],
    ['a fractional seed', official, { input: { ...input, seed: 7.5 } }, [{ type: 'invalid_type', field: 'input.seed', description: 'Invalid type. Expected: integer, given: number' }]],
    ['more outputs than the model makes', official, { input: { ...input, num_outputs: 5 } }, [{ type: 'number_lte', field: 'input.num_outputs', description: 'Must be less than or equal to 4' }]],
    ['no outputs', official, { input: { ...input, num_outputs: 0 } }, [{ type: 'number_gte', field: 'input.num_outputs', description: 'Must be greater than or equal to 1' }]],
    ['an output format the model does not write', official, { input: { ...input, output_format: 'gif' } }, [{ type: 'enum', field: 'input.output_format', description: 'output_format must be one of the following: "webp", "jpg", "png"' }]],
    ['an input without a prompt', official, { input: { aspect_ratio: '1:1' } }, [{ type: 'required', field: 'input', description: 'prompt is required' }]],
    ['an input that is not an object', official, { input: 'a lighthouse' }, [{ type: 'invalid_type', field: 'input', description: 'Invalid type. Expected: object, given: string' }]],
    ['a body without input', official, { prompt: 'a lighthouse' }, [{ type: 'required', field: '', description: 'input is required' }, { type: 'additional_property_not_allowed', field: '', description: 'Additional property prompt is not allowed' }]],
    ['a version on an official model', official, { version: 'abc', input }, [{ type: 'additional_property_not_allowed', field: '', description: 'Additional property version is not allowed' }]],
    ['a pinned prediction without version', '/predictions', { input }, [{ type: 'required', field: '', description: 'version is required' }]],
  ] as const)('refuses %s', async (_, path, body, invalidFields) => {
    const before = fake.predictions().length;
    const answer = await post(path, body);
    const detail = invalidFields.map((f) => (f.field ? `- ${f.field}: ${f.description}\n` : `- ${f.description}\n`)).join('');
    expect(answer).toEqual({ status: 422, body: { detail, status: 422, title: 'Input validation failed', invalid_fields: invalidFields } });
    expect(fake.predictions()).toHaveLength(before);
  });
});
