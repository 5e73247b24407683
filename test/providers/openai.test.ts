import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IMAGE_SIZES, type AspectRatio } from '../../src/generation/aspect-ratio.ts';
import { isAbortError } from '../../src/providers/errors.ts';
import { createOpenAIProvider } from '../../src/providers/openai.ts';
import { ProviderError, type GenerateRequest, type ImageProvider } from '../../src/providers/provider.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../fakes/openai.ts';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

let fake: FakeOpenAI;
let provider: ImageProvider;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  provider = createOpenAIProvider({ apiKey: fake.apiKey, baseUrl: fake.url, model: 'gpt-image-1', concurrency: 3 });
});
afterAll(() => fake.close());
beforeEach(() => fake.reset());

function request(over: Partial<GenerateRequest> = {}): GenerateRequest {
  const aspectRatio = over.aspectRatio ?? '16:9';
  return {
    prompt: 'a lighthouse at dusk',
    fullPrompt: 'a lighthouse at dusk, watercolor',
    aspectRatio,
    ...IMAGE_SIZES[aspectRatio],
    seed: 42,
    model: null,
    signal: AbortSignal.timeout(10_000),
    ...over,
  };
}

/** The ProviderError the call rejects with (fails the test on success or on any other error). */
async function failure(call: Promise<unknown>): Promise<ProviderError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

function generations() {
  return fake.requests.filter((r) => r.path === '/v1/images/generations');
}

describe('openai provider: success', () => {
  it('describes itself', () => {
    expect(provider.name).toBe('openai');
    expect(provider.defaultModel).toBe('gpt-image-1');
    expect(provider.concurrency).toBe(3);
  });

  it('generates a PNG with gpt-image-1 and reports its real size and the request id', async () => {
    const image = await provider.generate(request({ aspectRatio: '16:9' }));

    expect(Array.from(image.bytes.subarray(0, 8))).toEqual(PNG_SIGNATURE);
    const meta = await sharp(image.bytes).metadata();
    expect([meta.width, meta.height]).toEqual([1536, 1024]);
    expect(image).toMatchObject({ mimeType: 'image/png', width: 1536, height: 1024, model: 'gpt-image-1', seed: null, revisedPrompt: null });

    expect(generations()).toHaveLength(1);
    const [sent] = generations();
    expect(sent!.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(sent!.body).toEqual({ model: 'gpt-image-1', prompt: 'a lighthouse at dusk, watercolor', n: 1, size: '1536x1024' });
    expect(image.providerRequestId).toBe(sent!.requestId);
    expect(fake.downloads).toEqual([]);
  });

  it('uses the project model over the default', async () => {
    const image = await provider.generate(request({ model: 'gpt-image-1-mini', aspectRatio: '1:1' }));
    expect(image.model).toBe('gpt-image-1-mini');
    expect(generations()[0]!.body).toMatchObject({ model: 'gpt-image-1-mini', size: '1024x1024' });
  });

  const sizes: [string, AspectRatio, string][] = [
    ['gpt-image-1', '1:1', '1024x1024'],
    ['gpt-image-1', '16:9', '1536x1024'],
    ['gpt-image-1', '4:3', '1536x1024'],
    ['gpt-image-1', '3:2', '1536x1024'],
    ['gpt-image-1', '9:16', '1024x1536'],
    ['gpt-image-1', '3:4', '1024x1536'],
    ['gpt-image-1', '2:3', '1024x1536'],
    ['dall-e-3', '1:1', '1024x1024'],
    ['dall-e-3', '16:9', '1792x1024'],
    ['dall-e-3', '3:2', '1792x1024'],
    ['dall-e-3', '9:16', '1024x1792'],
    ['dall-e-3', '3:4', '1024x1792'],
    ['dall-e-2', '16:9', '1024x1024'],
    ['dall-e-2', '2:3', '1024x1024'],
  ];
  it.each(sizes)('%s at %s asks for %s', async (model, aspectRatio, size) => {
    const image = await provider.generate(request({ model, aspectRatio }));
    expect(generations()).toHaveLength(1);
    expect(generations()[0]!.body.size).toBe(size);
    expect(`${image.width}x${image.height}`).toBe(size);
  });

  it('asks dall-e-3 for one base64 image and keeps its revised prompt', async () => {
    const image = await provider.generate(request({ model: 'dall-e-3', aspectRatio: '9:16' }));

    const [sent] = generations();
    expect(sent!.body).toEqual({ model: 'dall-e-3', prompt: 'a lighthouse at dusk, watercolor', n: 1, size: '1024x1792', response_format: 'b64_json' });
    expect(image).toMatchObject({ mimeType: 'image/png', width: 1024, height: 1792, model: 'dall-e-3', seed: null });
    expect(image.revisedPrompt).toBe('A detailed rendering of: a lighthouse at dusk, watercolor');
    expect(image.providerRequestId).toBe(sent!.requestId);
    expect(fake.downloads).toEqual([]);
  });

  it('asks dall-e-2 for base64 too', async () => {
    await provider.generate(request({ model: 'dall-e-2' }));
    expect(generations()[0]!.body).toMatchObject({ model: 'dall-e-2', response_format: 'b64_json', n: 1 });
  });

  it('reports the size of the bytes received, not the size asked for', async () => {
    fake.script('wrong_size');
    const image = await provider.generate(request({ aspectRatio: '16:9' }));
    expect(generations()[0]!.body.size).toBe('1536x1024');
    expect([image.width, image.height]).toEqual([256, 256]);
  });

  it('downloads the image at once when the answer carries only a URL', async () => {
    fake.script('url');
    const image = await provider.generate(request({ model: 'dall-e-3', aspectRatio: '1:1' }));
    expect(fake.downloads).toHaveLength(1);
    expect(Array.from(image.bytes.subarray(0, 8))).toEqual(PNG_SIGNATURE);
    expect([image.width, image.height]).toEqual([1024, 1024]);
  });
});

describe('openai provider: faults', () => {
  it('429 is a transient rate_limited with Retry-After, and the SDK does not retry', async () => {
    fake.script('rate_limit', 'ok');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ provider: 'openai', transient: true, code: 'rate_limited', status: 429, retryAfterMs: 7000 });
    expect(err.message).toContain('Rate limit reached for images per minute');
    expect(generations()).toHaveLength(1);
    expect(err.providerRequestId).toBe(generations()[0]!.requestId);
  });

  it.each([
    ['server_error', 500, 'The server had an error processing your request'],
    ['unavailable', 503, 'The engine is currently overloaded'],
  ] as const)('%s (%i) is a transient server error, not retried by the SDK', async (fault, status, words) => {
    fake.script(fault, 'ok');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ transient: true, code: 'server', status });
    expect(err.message).toContain(words);
    expect(generations()).toHaveLength(1);
  });

  it('a hung request is given up when the signal aborts, as an abort and not a ProviderError', { timeout: 5_000 }, async () => {
    fake.script('hang');
    const req = request({ signal: AbortSignal.timeout(300) });
    const err = await provider.generate(req).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(err).not.toBeInstanceOf(ProviderError);
    expect(req.signal.aborted).toBe(true);
    expect(isAbortError(err)).toBe(true);
    expect(generations()).toHaveLength(1);
  });

  it('malformed JSON is a transient bad_response that keeps the request id', async () => {
    fake.script('malformed');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ transient: true, code: 'bad_response' });
    expect(err.message).toContain('malformed JSON');
    expect(err.providerRequestId).toBe(generations()[0]!.requestId);
  });

  it('an answer without an image is a transient bad_response', async () => {
    fake.script('no_image');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ transient: true, code: 'bad_response' });
    expect(err.message).toContain('no image');
  });

  it('a moderation refusal (gpt-image) is a permanent content_policy with the provider message', async () => {
    fake.script('content_policy');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ transient: false, code: 'content_policy', status: 400 });
    expect(err.message).toContain('Your request was rejected by the safety system');
    expect(err.message).toContain('moderation_blocked');
    expect(err.providerRequestId).toBe(generations()[0]!.requestId);
  });

  it('a content_policy_violation (dall-e-3) is a permanent content_policy', async () => {
    fake.script('content_policy');
    const err = await failure(provider.generate(request({ model: 'dall-e-3' })));
    expect(err).toMatchObject({ transient: false, code: 'content_policy', status: 400 });
    expect(err.message).toContain('Your request was rejected as a result of our safety system');
  });

  it('any other 400 is a permanent bad_request', async () => {
    // The fake, like the API, validates the body before generating.
    const err = await failure(provider.generate(request({ prompt: '', fullPrompt: '' })));
    expect(err).toMatchObject({ transient: false, code: 'bad_request', status: 400 });
    expect(err.message).toContain("Missing required parameter: 'prompt'");
  });

  it('a wrong key is a permanent auth error', async () => {
    const wrong = createOpenAIProvider({ apiKey: 'sk-wrong-key-0000', baseUrl: fake.url, model: 'gpt-image-1' });
    const err = await failure(wrong.generate(request()));
    expect(err).toMatchObject({ transient: false, code: 'auth', status: 401 });
    expect(err.message).toContain('Incorrect API key provided');
    expect(generations()).toHaveLength(1);
  });

  it('a revoked key (401 from the API) is a permanent auth error', async () => {
    fake.script('bad_key');
    const err = await failure(provider.generate(request()));
    expect(err).toMatchObject({ transient: false, code: 'auth', status: 401 });
  });

  it('an output URL that 404s is a transient bad_response', async () => {
    fake.script('url_404');
    const err = await failure(provider.generate(request({ model: 'dall-e-3' })));
    expect(err).toMatchObject({ transient: true, code: 'bad_response' });
    expect(err.message).toContain('404');
    expect(fake.downloads).toHaveLength(1);
  });

  it('a refused connection is a transient network error', async () => {
    const gone = await startFakeOpenAI();
    await gone.close();
    const offline = createOpenAIProvider({ apiKey: gone.apiKey, baseUrl: gone.url, model: 'gpt-image-1' });
    const err = await failure(offline.generate(request()));
    expect(err).toMatchObject({ transient: true, code: 'network' });
  });
});

describe('the fake refuses what the Images API refuses, in its words', () => {
  async function post(body: unknown) {
    const res = await fetch(`${fake.url}/images/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { error?: Record<string, unknown> } };
  }
  const prompt = 'a lighthouse';

  it('accepts exactly what the adapter sends', async () => {
    expect((await post({ model: 'gpt-image-1', prompt, n: 1, size: '1536x1024' })).status).toBe(200);
    expect((await post({ model: 'dall-e-3', prompt, n: 1, size: '1792x1024', response_format: 'b64_json' })).status).toBe(200);
  });

  it.each([
    ['an unknown parameter', { model: 'gpt-image-1', prompt, seed: 42 }, { message: "Unknown parameter: 'seed'.", type: 'invalid_request_error', param: 'seed', code: 'unknown_parameter' }],
    ['response_format to a GPT image model', { model: 'gpt-image-1', prompt, response_format: 'b64_json' }, { message: "Unknown parameter: 'response_format'.", type: 'invalid_request_error', param: 'response_format', code: 'unknown_parameter' }],
    ['a size gpt-image-1 does not make', { model: 'gpt-image-1', prompt, size: '1792x1024' }, { message: "Invalid value: '1792x1024'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.", type: 'invalid_request_error', param: 'size', code: 'invalid_value' }],
    ['a size dall-e-3 does not make', { model: 'dall-e-3', prompt, size: '1536x1024' }, { message: 'The size is not supported by this model.', type: 'invalid_request_error', param: null, code: 'invalid_size' }],
    ['a size dall-e-2 does not make', { model: 'dall-e-2', prompt, size: '1792x1024' }, { message: 'The size is not supported by this model.', type: 'invalid_request_error', param: null, code: 'invalid_size' }],
    ['an unknown response_format', { model: 'dall-e-3', prompt, response_format: 'png' }, { message: "Invalid value: 'png'. Supported values are: 'url' and 'b64_json'.", type: 'invalid_request_error', param: 'response_format', code: 'invalid_value' }],
    ['n as a string', { model: 'gpt-image-1', prompt, n: '1' }, { message: "Invalid type for 'n': expected an integer, but got a string instead.", type: 'invalid_request_error', param: 'n', code: 'invalid_type' }],
    ['n = 0', { model: 'gpt-image-1', prompt, n: 0 }, { message: "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead.", type: 'invalid_request_error', param: 'n', code: 'integer_below_min_value' }],
    ['n = 11', { model: 'dall-e-2', prompt, n: 11 }, { message: "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead.", type: 'invalid_request_error', param: 'n', code: 'integer_above_max_value' }],
    ['n = 2 to dall-e-3', { model: 'dall-e-3', prompt, n: 2 }, { message: 'You must provide n=1 for this model.', type: 'invalid_request_error', param: 'n', code: 'invalid_value' }],
    ['a prompt that is not a string', { model: 'gpt-image-1', prompt: 7 }, { message: "Invalid type for 'prompt': expected a string, but got an integer instead.", type: 'invalid_request_error', param: 'prompt', code: 'invalid_type' }],
    ['a prompt past dall-e-2\'s 1,000 characters', { model: 'dall-e-2', prompt: 'x'.repeat(1001) }, { message: 'Prompt must be length 1000 or less. Your prompt length is 1001. Please reduce your prompt length.', type: 'invalid_request_error', param: null, code: 'invalid_value' }],
  ] as const)('refuses %s with a 400', async (_, body, error) => {
    const answer = await post(body);
    expect(answer).toEqual({ status: 400, body: { error } });
  });
});

describe('openai provider: requests the API refuses', () => {
  it("a prompt longer than dall-e-3 takes is a permanent bad_request with the API's words, sent once", async () => {
    const err = await failure(provider.generate(request({ model: 'dall-e-3', fullPrompt: 'a lighthouse '.repeat(400) })));
    expect(err).toMatchObject({ transient: false, code: 'bad_request', status: 400 });
    expect(err.message).toContain('Prompt must be length 4000 or less');
    expect(generations()).toHaveLength(1);
  });
});
