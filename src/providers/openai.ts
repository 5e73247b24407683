import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type { AspectRatio } from '../generation/aspect-ratio.ts';
import { badResponse, httpFailure, isAbortError, networkFailure } from './errors.ts';
import { downloadImage, fromBase64, probeImage } from './image-bytes.ts';
import { ProviderError, type GeneratedImage, type GenerateRequest, type ImageProvider } from './provider.ts';

export interface OpenAIProviderOptions {
  apiKey: string;
  /** The API root including its version, e.g. https://api.openai.com/v1 (the default). */
  baseUrl?: string | undefined;
  /** Used when a project names no model, e.g. gpt-image-1. */
  model: string;
  concurrency?: number | undefined;
}

const NAME = 'openai';
const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/** Error codes and types with which the Images API refuses a prompt on content grounds. */
const CONTENT_POLICY_CODES = new Set(['content_policy_violation', 'moderation_blocked']);
const CONTENT_POLICY_TYPES = new Set(['image_generation_user_error']);

type Family = 'gpt-image' | 'dall-e-3' | 'dall-e-2';
type Orientation = 'square' | 'landscape' | 'portrait';

/** The sizes each model family accepts, by orientation. */
const SIZES: Readonly<Record<Family, Readonly<Record<Orientation, string>>>> = {
  'gpt-image': { square: '1024x1024', landscape: '1536x1024', portrait: '1024x1536' },
  'dall-e-3': { square: '1024x1024', landscape: '1792x1024', portrait: '1024x1792' },
  'dall-e-2': { square: '1024x1024', landscape: '1024x1024', portrait: '1024x1024' },
};

/**
 * OpenAI's Images API (POST /images/generations) through the official SDK. One image per
 * call. The SDK never retries (maxRetries 0): retrying is the runner's job, with its own
 * backoff and attempt count. Every answer is read as base64; a URL (dall-e answering
 * despite response_format) is downloaded at once, since it expires.
 */
export function createOpenAIProvider(options: OpenAIProviderOptions): ImageProvider {
  // Everything explicit: the SDK would otherwise fall back on OPENAI_* environment variables,
  // and only config reads the environment.
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseUrl ?? DEFAULT_BASE_URL,
    organization: null,
    project: null,
    adminAPIKey: null,
    webhookSecret: null,
    maxRetries: 0,
  });

  return {
    name: NAME,
    defaultModel: options.model,
    concurrency: options.concurrency,
    async generate(request: GenerateRequest): Promise<GeneratedImage> {
      const model = request.model ?? options.model;
      const family = familyOf(model);
      const body: OpenAI.ImageGenerateParamsNonStreaming = {
        model,
        prompt: request.fullPrompt,
        n: 1,
        size: SIZES[family][orientationOf(request.aspectRatio)],
        // GPT image models always answer base64 and reject response_format.
        ...(family === 'gpt-image' ? {} : { response_format: 'b64_json' as const }),
      };
      let providerRequestId: string | undefined;
      try {
        const response = await client.images.generate(body, { signal: request.signal }).asResponse();
        providerRequestId = response.headers.get('x-request-id') ?? undefined;
        const answer = parseAnswer(await response.text(), providerRequestId);
        const bytes = answer.b64 !== undefined
          ? fromBase64(NAME, answer.b64)
          : await downloadImage(NAME, answer.url, request.signal);
        const probed = await probeImage(NAME, bytes);
        return {
          bytes,
          ...probed,
          seed: null,
          model,
          revisedPrompt: answer.revisedPrompt,
          providerRequestId: providerRequestId ?? null,
        };
      } catch (err) {
        // The runner tells a timeout from a shutdown by its own signal: hand the abort back as is.
        if (request.signal.aborted || isAbortError(err)) throw err;
        throw toProviderError(err, providerRequestId);
      }
    },
  };
}

function familyOf(model: string): Family {
  if (model.startsWith('dall-e-3')) return 'dall-e-3';
  if (model.startsWith('dall-e-2')) return 'dall-e-2';
  // gpt-image-*, chatgpt-image-latest and whatever comes next take the GPT image sizes.
  return 'gpt-image';
}

function orientationOf(aspectRatio: AspectRatio): Orientation {
  const [w, h] = aspectRatio.split(':').map(Number) as [number, number];
  return w === h ? 'square' : w > h ? 'landscape' : 'portrait';
}

type Answer = ({ b64: string; url?: undefined } | { b64?: undefined; url: string }) & { revisedPrompt: string | null };

/** The first image of an ImagesResponse body; bad_response when there is none. */
function parseAnswer(text: string, providerRequestId: string | undefined): Answer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw badResponse(NAME, `malformed JSON (${text.length} bytes): ${(err as Error).message}`, { providerRequestId, cause: err });
  }
  const data = (json as { data?: unknown } | null)?.data;
  const first: unknown = Array.isArray(data) ? data[0] : undefined;
  if (typeof first !== 'object' || first === null) throw badResponse(NAME, 'no image in the answer', { providerRequestId });
  const { b64_json, url, revised_prompt } = first as Record<string, unknown>;
  const b64 = typeof b64_json === 'string' && b64_json !== '' ? b64_json : undefined;
  const href = typeof url === 'string' && url !== '' ? url : undefined;
  const revisedPrompt = typeof revised_prompt === 'string' ? revised_prompt : null;
  if (b64) return { b64, revisedPrompt };
  if (href) return { url: href, revisedPrompt };
  throw badResponse(NAME, 'the image has neither b64_json nor url', { providerRequestId });
}

function toProviderError(err: unknown, providerRequestId: string | undefined): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof APIConnectionTimeoutError) {
    return new ProviderError(NAME, `${NAME}: request timed out: ${err.message}`, { transient: true, code: 'timeout', cause: err });
  }
  if (err instanceof APIConnectionError) return networkFailure(NAME, err);
  if (err instanceof APIError && err.status !== undefined) {
    return httpFailure(NAME, err.status, messageOf(err), {
      headers: err.headers,
      contentPolicy: CONTENT_POLICY_CODES.has(err.code ?? '') || CONTENT_POLICY_TYPES.has(err.type ?? ''),
      providerRequestId: err.requestID ?? providerRequestId,
      cause: err,
    });
  }
  // Anything else is a fault on our side (a bad option, a bug): retrying will not help.
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError(NAME, `${NAME}: ${message}`, { transient: false, code: 'unknown', providerRequestId, cause: err });
}

/** The API's own words ({error:{message}}), with its code when it gave one. */
function messageOf(err: APIError): string {
  const body = err.error as { message?: unknown } | undefined;
  const text = typeof body?.message === 'string' && body.message !== '' ? body.message : err.message;
  return err.code ? `${text} (${err.code})` : text;
}
