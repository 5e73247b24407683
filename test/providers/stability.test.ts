import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AspectRatio } from '../../src/generation/aspect-ratio.ts';
import { ProviderError, type GenerateRequest, type ImageProvider } from '../../src/providers/provider.ts';
import { createStabilityProvider } from '../../src/providers/stability.ts';
import { fakeImageSize, startFakeStability, type FakeStability } from '../fakes/stability.ts';

let fake: FakeStability;

beforeAll(async () => {
  fake = await startFakeStability();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
});

function provider(model = 'core', apiKey = fake.apiKey): ImageProvider {
  return createStabilityProvider({ apiKey, baseUrl: fake.url, model, concurrency: 4 });
}

function request(o: Partial<GenerateRequest> & { aspectRatio?: AspectRatio } = {}): GenerateRequest {
  return {
    prompt: 'a lighthouse on a cliff',
    fullPrompt: 'a lighthouse on a cliff, watercolour',
    aspectRatio: '16:9',
    width: 1344,
    height: 768,
    seed: 42,
    model: null,
    signal: new AbortController().signal,
    ...o,
  };
}

async function failureOf(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('stability provider', () => {
  it('sends one multipart request and returns the real PNG with the seed the API used', async () => {
    const p = provider('core');
    expect(p).toMatchObject({ name: 'stability', defaultModel: 'core', concurrency: 4 });
    const image = await p.generate(request());

    expect(fake.requests).toHaveLength(1);
    const sent = fake.requests[0]!;
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe('/v2beta/stable-image/generate/core');
    expect(sent.headers.authorization).toBe(`Bearer ${fake.apiKey}`);
    expect(sent.headers.accept).toBe('image/*');
    expect(sent.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(sent.fields).toEqual({ prompt: 'a lighthouse on a cliff, watercolour', aspect_ratio: '16:9', seed: '42', output_format: 'png' });

    const meta = await sharp(image.bytes).metadata();
    expect(meta.format).toBe('png');
    expect({ width: meta.width, height: meta.height }).toEqual(fakeImageSize('16:9'));
    expect(image).toMatchObject({ mimeType: 'image/png', ...fakeImageSize('16:9'), seed: 42, model: 'core' });
    expect(image.providerRequestId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('records the seed from the answer when the API picks it (seed 0)', async () => {
    const image = await provider().generate(request({ seed: 0 }));
    expect(fake.requests[0]!.fields.seed).toBe('0');
    expect(image.seed).toBeGreaterThan(0);
  });

  it('calls the ultra endpoint, and the sd3 endpoint with the model field', async () => {
    const ultra = await provider('ultra').generate(request());
    const sd3 = await provider('core').generate(request({ model: 'sd3.5-large' }));
    expect(fake.requests.map((r) => r.path)).toEqual(['/v2beta/stable-image/generate/ultra', '/v2beta/stable-image/generate/sd3']);
    expect(fake.requests[0]!.fields.model).toBeUndefined();
    expect(fake.requests[1]!.fields.model).toBe('sd3.5-large');
    expect([ultra.model, sd3.model]).toEqual(['ultra', 'sd3.5-large']);
  });

  it('maps 4:3 and 3:4, which the API does not accept, to 5:4 and 4:5', async () => {
    const wide = await provider().generate(request({ aspectRatio: '4:3', width: 1152, height: 896 }));
    const tall = await provider().generate(request({ aspectRatio: '3:4', width: 896, height: 1152 }));
    expect(fake.requests.map((r) => r.fields.aspect_ratio)).toEqual(['5:4', '4:5']);
    // The size recorded is the image's own, not the one asked for.
    expect({ width: wide.width, height: wide.height }).toEqual(fakeImageSize('5:4'));
    expect({ width: tall.width, height: tall.height }).toEqual(fakeImageSize('4:5'));
  });

  it('refuses an unknown model without calling the API', async () => {
    const err = await failureOf(provider().generate(request({ model: 'dall-e-3' })));
    expect(err).toMatchObject({ code: 'bad_request', transient: false });
    expect(fake.requests).toHaveLength(0);
    expect(() => createStabilityProvider({ apiKey: 'k', model: 'dall-e-3' })).toThrow(/unknown model/);
  });
});

describe('stability faults', () => {
  it('429: transient rate_limited with Retry-After', async () => {
    fake.script('rate_limit');
    const err = await failureOf(provider().generate(request()));
    expect(err).toMatchObject({ code: 'rate_limited', transient: true, status: 429, retryAfterMs: 2000 });
    expect(err.message).toContain('rate_limit_exceeded');
    expect(err.providerRequestId).toMatch(/^[0-9a-f]{32}$/);
    expect(fake.requests).toHaveLength(1);
  });

  it('500 JSON and 503 HTML: transient server errors', async () => {
    fake.script('server_error', 'unavailable');
    const e500 = await failureOf(provider().generate(request()));
    const e503 = await failureOf(provider().generate(request()));
    expect(e500).toMatchObject({ code: 'server', transient: true, status: 500 });
    expect(e500.message).toContain('An unexpected server error occurred');
    expect(e503).toMatchObject({ code: 'server', transient: true, status: 503 });
    expect(e503.message).toContain('503 Service Temporarily Unavailable');
    expect(fake.requests).toHaveLength(2);
  });

  it('a hung answer: the signal aborts the call, rethrown as the abort it is', async () => {
    fake.script('hang');
    const err = await provider()
      .generate(request({ signal: AbortSignal.timeout(300) }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).not.toBeInstanceOf(ProviderError);
    expect((err as Error).name).toBe('TimeoutError');
    await expect.poll(() => fake.requests[0]?.aborted).toBe(true);
  }, 10_000);

  it('a 200 whose bytes are not an image: transient bad_response', async () => {
    fake.script('garbage');
    const err = await failureOf(provider().generate(request()));
    expect(err).toMatchObject({ code: 'bad_response', transient: true });
  });

  it('403 content_moderation: permanent content_policy, with the vendor message', async () => {
    fake.script('moderation');
    const err = await failureOf(provider().generate(request()));
    expect(err).toMatchObject({ code: 'content_policy', transient: false, status: 403 });
    expect(err.message).toContain('flagged by our content moderation system');
    expect(err.providerRequestId).toBeTruthy();
  });

  it('finish-reason CONTENT_FILTERED: permanent content_policy', async () => {
    fake.script('content_filtered');
    const err = await failureOf(provider().generate(request()));
    expect(err).toMatchObject({ code: 'content_policy', transient: false });
    expect(err.message).toContain('CONTENT_FILTERED');
  });

  it('401, scripted or from a wrong key: permanent auth', async () => {
    fake.script('unauthorized');
    const scripted = await failureOf(provider().generate(request()));
    const wrongKey = await failureOf(provider('core', 'sk-wrong').generate(request()));
    for (const err of [scripted, wrongKey]) {
      expect(err).toMatchObject({ code: 'auth', transient: false, status: 401 });
      expect(err.message).toContain('invalid or missing API key');
    }
  });

  it('402: permanent, with the payment message', async () => {
    fake.script('payment_required');
    const err = await failureOf(provider().generate(request()));
    expect(err).toMatchObject({ transient: false, status: 402 });
    expect(err.message).toContain('lack sufficient credits');
  });

  it('nothing listening: transient network error', async () => {
    const gone = await startFakeStability();
    await gone.close();
    const err = await failureOf(createStabilityProvider({ apiKey: gone.apiKey, baseUrl: gone.url, model: 'core' }).generate(request()));
    expect(err).toMatchObject({ code: 'network', transient: true });
  });
});
