import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ASPECT_RATIOS, IMAGE_SIZES, type AspectRatio } from '../../src/generation/aspect-ratio.ts';
import { isAbortError } from '../../src/providers/errors.ts';
import { createLocalProvider } from '../../src/providers/local.ts';
import { ProviderError, type GenerateRequest } from '../../src/providers/provider.ts';

function request(aspectRatio: AspectRatio = '16:9', over: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    prompt: 'a lighthouse at dusk',
    fullPrompt: 'a lighthouse at dusk. Style: ink',
    aspectRatio,
    ...IMAGE_SIZES[aspectRatio],
    seed: 42,
    model: null,
    signal: AbortSignal.timeout(10_000),
    ...over,
  };
}

describe('local provider', () => {
  it.each(ASPECT_RATIOS)('at %s reports the type and size its PNG has, which is the size asked for', async (aspectRatio) => {
    const image = await createLocalProvider({ delayMs: 0 }).generate(request(aspectRatio));
    const meta = await sharp(image.bytes).metadata();
    expect(meta.format).toBe('png');
    expect({ mimeType: image.mimeType, width: image.width, height: image.height }).toEqual({ mimeType: 'image/png', width: meta.width, height: meta.height });
    expect({ width: meta.width, height: meta.height }).toEqual(IMAGE_SIZES[aspectRatio]);
    expect([image.seed, image.model]).toEqual([42, null]);
  });

  it('reports what its renderer drew, not what the request asked for', async () => {
    const drawn = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#336699' } }).jpeg().toBuffer();
    const provider = createLocalProvider({ delayMs: 0, render: async () => drawn });
    const image = await provider.generate(request('9:16'));
    expect(image.bytes).toBe(drawn);
    expect({ mimeType: image.mimeType, width: image.width, height: image.height }).toEqual({ mimeType: 'image/jpeg', width: 300, height: 200 });
  });

  it('refuses bytes that are not an image as a transient bad_response', async () => {
    const provider = createLocalProvider({ delayMs: 0, render: async () => new TextEncoder().encode('<svg') });
    const err = await provider.generate(request()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: 'local', code: 'bad_response', transient: true });
  });

  it('draws the same bytes for the same prompt, seed and size, and other bytes for another seed', async () => {
    const provider = createLocalProvider({ delayMs: 0 });
    const [a, b, c] = await Promise.all([provider.generate(request()), provider.generate(request()), provider.generate(request('16:9', { seed: 43 }))]);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(Buffer.from(a.bytes).equals(Buffer.from(c.bytes))).toBe(false);
  });

  it('gives up its artificial delay when the signal aborts, as the abort it is', async () => {
    const provider = createLocalProvider({ delayMs: 60_000 });
    const err = await provider.generate(request('1:1', { signal: AbortSignal.abort() })).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ProviderError);
    expect(isAbortError(err)).toBe(true);
  });
});
