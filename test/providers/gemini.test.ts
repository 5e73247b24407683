import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AspectRatio } from '../../src/generation/aspect-ratio.ts';
import { isAbortError } from '../../src/providers/errors.ts';
import { createGeminiProvider } from '../../src/providers/gemini.ts';
import { ProviderError, type GenerateRequest, type ImageProvider } from '../../src/providers/provider.ts';
import { until } from '../support/gated-provider.ts';
import { GEMINI_SIZES, RETRY_DELAY_SECONDS, startFakeGemini, type FakeGemini } from '../fakes/gemini.ts';

const MODEL = 'gemini-2.5-flash-image';

let fake: FakeGemini;
let provider: ImageProvider;

beforeAll(async () => {
  fake = await startFakeGemini();
  provider = createGeminiProvider({ apiKey: fake.apiKey, baseUrl: fake.url, model: MODEL, concurrency: 3 });
});
afterAll(() => fake.close());
beforeEach(() => void fake.requests.splice(0));

function request(over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: 'a lighthouse at dusk',
    fullPrompt: 'a lighthouse at dusk, watercolour, soft light',
    aspectRatio: '4:3',
    width: 1152,
    height: 896,
    seed: 424242,
    model: null,
    signal: AbortSignal.timeout(10_000),
    ...over,
  };
}

/** The ProviderError a call rejects with (fails the test if it resolves or throws something else). */
async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => expect.unreachable('the call succeeded'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('gemini provider', () => {
  it('names itself and its default model', () => {
    expect(provider.name).toBe('gemini');
    expect(provider.defaultModel).toBe(MODEL);
    expect(provider.concurrency).toBe(3);
  });

  it('returns the PNG the API answered, with its real size, in one HTTP request', async () => {
    const image = await provider.generate(request());

    expect(image.mimeType).toBe('image/png');
    expect(Buffer.from(image.bytes.subarray(0, 8))).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // Gemini's own 4:3 size, not the 1152×896 sceneworks asked for.
    expect({ width: image.width, height: image.height }).toEqual(GEMINI_SIZES['4:3']);
    const meta = await sharp(image.bytes).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual(GEMINI_SIZES['4:3']);
    expect(image.model).toBe(MODEL);
    expect(image.seed).toBe(424242);
    expect(image.providerRequestId).toMatch(/^[\w-]{10,}$/);

    expect(fake.requests).toHaveLength(1);
    const sent = fake.requests[0]!;
    expect(sent.path).toBe(`/v1beta/models/${MODEL}:generateContent`);
    expect(sent.headers['x-goog-api-key']).toBe(fake.apiKey);
    expect(sent.body.contents).toEqual([{ role: 'user', parts: [{ text: 'a lighthouse at dusk, watercolour, soft light' }] }]);
    expect(sent.body.generationConfig).toMatchObject({ responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: '4:3' }, seed: 424242 });
  });

  it("uses the project's model when it names one", async () => {
    const image = await provider.generate(request({ model: 'gemini-3-pro-image-preview', aspectRatio: '9:16' }));
    expect(fake.requests.map((r) => r.model)).toEqual(['gemini-3-pro-image-preview']);
    expect(image.model).toBe('gemini-3-pro-image-preview');
    expect({ width: image.width, height: image.height }).toEqual(GEMINI_SIZES['9:16']);
  });

  it('reports a 429 as rate_limited with the RetryInfo delay, without retrying it', async () => {
    fake.script('rate_limited');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ provider: 'gemini', code: 'rate_limited', transient: true, status: 429, retryAfterMs: RETRY_DELAY_SECONDS * 1000 });
    expect(err.message).toContain('RESOURCE_EXHAUSTED');
    expect(err.message).toContain('exceeded your current quota');
    expect(fake.requests).toHaveLength(1);
  });

  it.each([
    ['server_error', 500, 'INTERNAL'],
    ['unavailable', 503, 'model is overloaded'],
  ] as const)('reports a %s (%i) as a transient server failure, without retrying it', async (fault, status, words) => {
    fake.script(fault);
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ code: 'server', transient: true, status, retryAfterMs: undefined });
    expect(err.message).toContain(words);
    expect(fake.requests).toHaveLength(1);
  });

  it('gives up on a hung request when the signal fires, with the abort error itself', { timeout: 10_000 }, async () => {
    fake.script('hang');
    const err = await provider.generate(request({ signal: AbortSignal.timeout(300) })).then(
      () => expect.unreachable('the call succeeded'),
      (e: unknown) => e,
    );
    expect(err).not.toBeInstanceOf(ProviderError);
    expect(isAbortError(err)).toBe(true);
    await until(() => fake.requests[0]?.aborted === true, 'the fake to see the connection closed', 5_000);
  });

  it('reports malformed JSON as a transient bad_response', async () => {
    fake.script('malformed_json');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ code: 'bad_response', transient: true });
    expect(err.message).toContain('malformed JSON');
  });

  it('reports a prompt blocked for safety as a permanent content_policy failure, with the reason', async () => {
    fake.script('prompt_blocked');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ code: 'content_policy', transient: false });
    expect(err.message).toContain('prompt blocked: SAFETY');
    expect(err.providerRequestId).toBeTruthy();
  });

  it("reports an image withheld for safety as a permanent content_policy failure, with the model's words", async () => {
    fake.script('image_safety');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ code: 'content_policy', transient: false });
    expect(err.message).toContain('IMAGE_SAFETY');
    expect(err.message).toContain('may violate the safety policy');
  });

  it('reports an answer with text and no image as a transient bad_response', async () => {
    fake.script('text_only');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ code: 'bad_response', transient: true });
    expect(err.message).toContain('finishReason STOP');
    expect(err.message).toContain('description of the scene');
  });

  it('reports a wrong key (400 API_KEY_INVALID) as a permanent auth failure', async () => {
    const wrongKey = createGeminiProvider({ apiKey: 'AIza-wrong', baseUrl: fake.url, model: MODEL });
    const err = await failure(wrongKey.generate(request()));
    expect(err).toMatchObject({ code: 'auth', transient: false, status: 400 });
    expect(err.message).toContain('API_KEY_INVALID');
    expect(err.message).toContain('API key not valid');
    expect(fake.requests[0]!.headers['x-goog-api-key']).toBe('AIza-wrong');
  });

  it('reports a 403 PERMISSION_DENIED as a permanent auth failure', async () => {
    fake.script('permission_denied');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ code: 'auth', transient: false, status: 403 });
  });

  it('reports another 400 as a permanent bad_request', async () => {
    fake.script('invalid_argument');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ code: 'bad_request', transient: false, status: 400 });
    expect(err.message).toContain('INVALID_ARGUMENT: Request contains an invalid argument.');
  });

  it('reports a refused connection as a transient network failure', async () => {
    const gone = await startFakeGemini();
    await gone.close();
    const unreachable = createGeminiProvider({ apiKey: gone.apiKey, baseUrl: gone.url, model: MODEL });
    const err = await failure(unreachable.generate(request()));
    expect(err).toMatchObject({ code: 'network', transient: true });
  });
});

describe('gemini provider: a thinking model', () => {
  it('keeps the final image, not the draft marked thought that comes before it', async () => {
    fake.script('thinking');
    const image = await provider.generate(request({ model: 'gemini-3-pro-image-preview' }));

    // The fake's draft is half the final size: the size tells which one was kept.
    expect({ width: image.width, height: image.height }).toEqual(GEMINI_SIZES['4:3']);
    const meta = await sharp(image.bytes).metadata();
    expect({ width: meta.width, height: meta.height }).toEqual(GEMINI_SIZES['4:3']);
    expect(fake.requests).toHaveLength(1);
  });

  it('reports drafts with no final image as a transient bad_response, without the thoughts in the message', async () => {
    fake.script('thoughts_only');
    const err = await failure(provider.generate(request({ model: 'gemini-3-pro-image-preview' })));
    expect(err).toMatchObject({ code: 'bad_response', transient: true });
    expect(err.message).toContain('no image part (finishReason STOP)');
    expect(err.message).not.toContain('Composing the scene');
  });
});

describe('gemini provider: requests the API refuses', () => {
  it("reports an aspect ratio the model does not take as a permanent bad_request, with Google's words", async () => {
    const err = await failure(provider.generate(request({ aspectRatio: '7:5' as AspectRatio })));
    expect(err).toMatchObject({ code: 'bad_request', transient: false, status: 400 });
    expect(err.message).toContain("INVALID_ARGUMENT: * GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of '1:1',");
    expect(fake.requests).toHaveLength(1);
  });
});

describe('the fake refuses what the Gemini API refuses, in its words', () => {
  async function post(body: unknown, model = MODEL) {
    const res = await fetch(`${fake.url}/v1beta/models/${model}:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': fake.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  }
  const contents = [{ role: 'user', parts: [{ text: 'a lighthouse' }] }];
  const generationConfig = { seed: 7, responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: '16:9' } };
  const invalid = (message: string, details?: unknown[]) => ({ status: 400, body: { error: { code: 400, message, status: 'INVALID_ARGUMENT', ...(details ? { details } : {}) } } });
  const badRequest = (fieldViolations: unknown[]) => [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations }];

  it('answers what the adapter sends, in camelCase or snake_case, with an image', async () => {
    for (const body of [{ contents, generationConfig }, { contents, generation_config: { seed: 7, response_modalities: ['TEXT', 'IMAGE'], image_config: { aspect_ratio: '16:9' } } }]) {
      const answer = await post(body);
      expect(answer.status).toBe(200);
      expect(answer.body.candidates[0].content.parts.some((p: any) => p.inlineData)).toBe(true);
    }
  });

  it('answers in words alone when asked for TEXT only', async () => {
    const answer = await post({ contents, generationConfig: { ...generationConfig, responseModalities: ['TEXT'] } });
    expect(answer.status).toBe(200);
    expect(answer.body.candidates[0].content.parts.map((p: any) => Object.keys(p))).toEqual([['text']]);
  });

  it.each([
    ['an unknown request field', { contents, generationConfig, parameters: {} }, invalid('Invalid JSON payload received. Unknown name "parameters": Cannot find field.', badRequest([{ description: 'Invalid JSON payload received. Unknown name "parameters": Cannot find field.' }]))],
    ['an unknown generationConfig field', { contents, generationConfig: { ...generationConfig, aspectRatio: '16:9' } }, invalid(`Invalid JSON payload received. Unknown name "aspectRatio" at 'generation_config': Cannot find field.`, badRequest([{ field: 'generation_config', description: `Invalid JSON payload received. Unknown name "aspectRatio" at 'generation_config': Cannot find field.` }]))],
    ['an unknown imageConfig field', { contents, generationConfig: { ...generationConfig, imageConfig: { aspectRatio: '16:9', outputMimeType: 'image/png' } } }, invalid(`Invalid JSON payload received. Unknown name "outputMimeType" at 'generation_config.image_config': Cannot find field.`, badRequest([{ field: 'generation_config.image_config', description: `Invalid JSON payload received. Unknown name "outputMimeType" at 'generation_config.image_config': Cannot find field.` }]))],
    ['a modality that does not exist', { contents, generationConfig: { ...generationConfig, responseModalities: ['TEXT', 'PICTURE'] } }, invalid(`Invalid value at 'generation_config.response_modalities[1]' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), "PICTURE"`, badRequest([{ field: 'generation_config.response_modalities[1]', description: `Invalid value at 'generation_config.response_modalities[1]' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), "PICTURE"` }]))],
    ['a modality the image model cannot answer in', { contents, generationConfig: { ...generationConfig, responseModalities: ['TEXT', 'AUDIO'] } }, invalid('Model does not support the requested response modalities: audio')],
    ['an aspect ratio the model does not take', { contents, generationConfig: { ...generationConfig, imageConfig: { aspectRatio: '8:1' } } }, invalid("* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of '1:1', '2:3', '3:2', '3:4', '4:3', '4:5', '5:4', '9:16', '16:9', or '21:9'.\n")],
  ] as const)('refuses %s with a 400 INVALID_ARGUMENT', async (_, body, expected) => {
    expect(await post(body)).toEqual(expected);
  });
});
