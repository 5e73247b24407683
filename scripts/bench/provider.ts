import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import type { GeneratedImage, ImageProvider } from '../../src/providers/provider.ts';

/** A small PNG made once, so the provider costs no CPU per image. */
export async function smallPng(size = 64): Promise<Uint8Array> {
  const buffer = await sharp({ create: { width: size, height: size, channels: 3, background: { r: 40, g: 90, b: 160 } } })
    .png()
    .toBuffer();
  return new Uint8Array(buffer);
}

/**
 * A provider that answers after `latencyMs` (a timer, not CPU) with the same PNG, like a
 * remote model whose only cost to us is waiting. Counts its calls so a run can be checked.
 */
export function constantProvider(png: Uint8Array, latencyMs: number, size = 64): ImageProvider & { calls(): number } {
  let calls = 0;
  return {
    name: 'local',
    defaultModel: null,
    calls: () => calls,
    async generate(request): Promise<GeneratedImage> {
      calls += 1;
      if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: request.signal });
      return { bytes: png, mimeType: 'image/png', width: size, height: size, seed: request.seed, model: 'bench-constant' };
    },
  };
}
