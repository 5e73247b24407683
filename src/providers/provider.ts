import type { AspectRatio } from '../generation/aspect-ratio.ts';

export interface GenerateRequest {
  /** The scene's prompt. */
  prompt: string;
  /** What is actually sent to the model: prompt + style (+ negative prompt). */
  fullPrompt: string;
  aspectRatio: AspectRatio;
  /** The size sceneworks would render at; adapters map it to the nearest size the model supports. */
  width: number;
  height: number;
  seed: number;
  /** The project's model, or null for the provider's configured default. */
  model: string | null;
  /**
   * Aborts the call: shutdown, or the runner's per-call timeout (PROVIDER_TIMEOUT_MS).
   * Adapters pass it to every request they make.
   */
  signal: AbortSignal;
}

export interface GeneratedImage {
  bytes: Uint8Array;
  mimeType: string;
  /** The real size of `bytes` (see probeImage), not the size that was asked for. */
  width: number;
  height: number;
  seed: number | null;
  model: string | null;
  /** The prompt as the model rewrote it, when it says (OpenAI's revised_prompt). */
  revisedPrompt?: string | null;
  /** The vendor's id of this request or prediction, for support tickets. */
  providerRequestId?: string | null;
}

/** An image generator. Implementations wrap one vendor; the domain never imports an SDK. */
export interface ImageProvider {
  readonly name: string;
  /** The model used when a project names none. */
  readonly defaultModel: string | null;
  /** Provider calls this provider may have in flight in one process (on top of GENERATION_CONCURRENCY). */
  readonly concurrency?: number | undefined;
  generate(request: GenerateRequest): Promise<GeneratedImage>;
}

export type ProviderErrorCode =
  | 'rate_limited'
  | 'server'
  | 'network'
  | 'timeout'
  | 'bad_response'
  | 'bad_request'
  | 'content_policy'
  | 'auth'
  | 'not_found'
  | 'unknown';

/**
 * The one shape of failure the runner understands. Transient failures (429, 5xx, network,
 * timeout, a garbled answer) are retried with backoff; permanent ones (400, content policy,
 * bad key) fail the slot at once. `message` is the provider's own words, kept on the row.
 */
export class ProviderError extends Error {
  readonly provider: string;
  readonly transient: boolean;
  readonly code: ProviderErrorCode;
  readonly status: number | undefined;
  /** From Retry-After (or the vendor's retry_after), when the provider said how long to wait. */
  readonly retryAfterMs: number | undefined;
  readonly providerRequestId: string | undefined;

  constructor(
    provider: string,
    message: string,
    o: { transient: boolean; code: ProviderErrorCode; status?: number | undefined; retryAfterMs?: number | undefined; providerRequestId?: string | undefined; cause?: unknown },
  ) {
    super(message, { cause: o.cause });
    this.name = 'ProviderError';
    this.provider = provider;
    this.transient = o.transient;
    this.code = o.code;
    this.status = o.status;
    this.retryAfterMs = o.retryAfterMs;
    this.providerRequestId = o.providerRequestId;
  }
}
