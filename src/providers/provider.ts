import type { AspectRatio } from '../domain/aspect-ratio.ts';

export interface GenerateRequest {
  /** The scene's prompt. */
  prompt: string;
  /** What is actually sent to the model: prompt + style (+ negative prompt). */
  fullPrompt: string;
  aspectRatio: AspectRatio;
  width: number;
  height: number;
  seed: number;
  model: string | null;
  signal: AbortSignal;
}

export interface GeneratedImage {
  bytes: Uint8Array;
  mimeType: string;
  width: number;
  height: number;
  seed: number | null;
  model: string | null;
}

/** An image generator. Implementations wrap one vendor; the domain never imports an SDK. */
export interface ImageProvider {
  readonly name: string;
  generate(request: GenerateRequest): Promise<GeneratedImage>;
}

/** A failure the provider reported; `message` is kept on the image row for the user. */
export class ProviderError extends Error {
  readonly transient: boolean;
  constructor(message: string, options: { transient: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
    this.transient = options.transient;
  }
}
