import { ApiError, GoogleGenAI, type GenerateContentResponse, type Part } from '@google/genai';
import { badResponse, httpFailure, isAbortError, networkFailure } from './errors.ts';
import { fromBase64, probeImage } from './image-bytes.ts';
import { ProviderError, type GeneratedImage, type GenerateRequest, type ImageProvider } from './provider.ts';

export interface GeminiProviderOptions {
  apiKey: string;
  /** Another endpoint speaking the Gemini API (a proxy, a fake); the SDK appends /v1beta/models/…. */
  baseUrl?: string | undefined;
  /** The model used when a project names none, e.g. 'gemini-2.5-flash-image'. */
  model: string;
  concurrency?: number | undefined;
}

const NAME = 'gemini';

/**
 * Finish reasons that mean the model refused on policy grounds: asking again with the same
 * prompt is refused again. RECITATION, NO_IMAGE, OTHER… are left transient: another sample may pass.
 */
const POLICY_FINISH_REASONS = new Set(['SAFETY', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'IMAGE_PROHIBITED_CONTENT']);

/** ErrorInfo reasons that say the key is wrong, although the API answers them with a 400. */
const KEY_REASONS = new Set(['API_KEY_INVALID', 'API_KEY_EXPIRED', 'API_KEY_SERVICE_BLOCKED']);

/**
 * Google's Gemini image models (gemini-2.5-flash-image, …) through the official SDK:
 * one generateContent call per image, answered with the image as base64 inlineData.
 */
export function createGeminiProvider(options: GeminiProviderOptions): ImageProvider {
  const ai = new GoogleGenAI({
    apiKey: options.apiKey,
    // SDK v3 defaults to v1 (or GOOGLE_GENAI_API_VERSION); image output is documented on v1beta.
    apiVersion: 'v1beta',
    httpOptions: {
      ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
      // The runner owns retries and backoff; one attempt means one HTTP request per call.
      retryOptions: { attempts: 1 },
    },
  });

  return {
    name: NAME,
    defaultModel: options.model,
    concurrency: options.concurrency,
    async generate(request: GenerateRequest): Promise<GeneratedImage> {
      const model = request.model ?? options.model;
      let response: GenerateContentResponse;
      try {
        response = await ai.models.generateContent({
          model,
          contents: [{ role: 'user', parts: [{ text: request.fullPrompt }] }],
          config: {
            responseModalities: ['TEXT', 'IMAGE'],
            imageConfig: { aspectRatio: request.aspectRatio },
            seed: request.seed,
            abortSignal: request.signal,
            // A continuationToken would make the SDK send further requests on its own.
            automaticContinuation: false,
          },
        });
      } catch (err) {
        throw classify(err, request.signal);
      }

      const providerRequestId = response.responseId ?? undefined;
      const candidate = response.candidates?.[0];
      const parts = candidate?.content?.parts ?? [];
      const image = parts.find(isFinalImage);
      if (!image) {
        const text = parts.flatMap((p) => (p.text && !p.thought ? [p.text.trim()] : [])).join(' ');
        const blockReason = response.promptFeedback?.blockReason;
        if (blockReason) {
          const detail = response.promptFeedback?.blockReasonMessage;
          throw refused(`prompt blocked: ${blockReason}${detail ? `: ${detail}` : ''}`, providerRequestId);
        }
        const finishReason = candidate?.finishReason;
        if (finishReason && POLICY_FINISH_REASONS.has(finishReason)) {
          const detail = candidate?.finishMessage ?? text;
          throw refused(`image refused: ${finishReason}${detail ? `: ${detail}` : ''}`, providerRequestId);
        }
        throw badResponse(NAME, `no image part (finishReason ${finishReason ?? 'none'})${text ? `: ${text}` : ''}`, { providerRequestId });
      }

      const bytes = fromBase64(NAME, image.inlineData?.data);
      const { mimeType, width, height } = await probeImage(NAME, bytes);
      return {
        bytes,
        mimeType,
        width,
        height,
        seed: request.seed,
        model: response.modelVersion ?? model,
        providerRequestId: providerRequestId ?? null,
      };
    },
  };
}

/** The image to keep: thinking models may send draft images marked `thought` before the final one. */
function isFinalImage(part: Part): boolean {
  const data = part.inlineData;
  return !part.thought && !!data?.data && (data.mimeType ?? 'image/').startsWith('image/');
}

function refused(message: string, providerRequestId: string | undefined): ProviderError {
  return new ProviderError(NAME, `${NAME}: ${message}`, { transient: false, code: 'content_policy', providerRequestId });
}

/** Maps what the SDK threw to a ProviderError; an abort by the caller passes through untouched. */
function classify(err: unknown, signal: AbortSignal): unknown {
  if (signal.aborted || isAbortError(err)) return err;
  if (err instanceof ApiError) return apiFailure(err);
  // The SDK parses a 200's body with response.json(): a garbled body surfaces as a SyntaxError.
  if (err instanceof SyntaxError) return badResponse(NAME, `malformed JSON: ${err.message}`, { cause: err });
  return networkFailure(NAME, err);
}

interface GoogleError {
  code?: number;
  message?: string;
  status?: string;
  details?: { '@type'?: string; reason?: string; retryDelay?: string }[];
}

/**
 * ApiError carries only the status and the error body serialised into `message` (headers are
 * dropped), so Google's own retry hint, RetryInfo.retryDelay, is read from that body.
 */
function apiFailure(err: ApiError): ProviderError {
  const body = parseGoogleError(err.message);
  const message = body?.message ? `${body.status ? `${body.status}: ` : ''}${body.message}` : err.message;
  const reason = body?.details?.find((d) => d.reason)?.reason;
  if (reason && KEY_REASONS.has(reason)) {
    return new ProviderError(NAME, `${NAME} ${err.status}: ${reason}: ${message}`, { transient: false, code: 'auth', status: err.status, cause: err });
  }
  const retryDelay = body?.details?.find((d) => d['@type']?.endsWith('google.rpc.RetryInfo'))?.retryDelay;
  const delayMs = retryDelay ? durationMs(retryDelay) : undefined;
  return httpFailure(NAME, err.status, message, {
    // RetryInfo is Google's Retry-After; handed over in the form httpFailure reads.
    headers: delayMs === undefined ? undefined : { 'retry-after-ms': String(delayMs) },
    cause: err,
  });
}

function parseGoogleError(text: string): GoogleError | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: GoogleError };
    const error = parsed.error;
    // A non-JSON content type makes the SDK wrap the raw body text as error.message.
    if (typeof error?.message === 'string' && error.message.trimStart().startsWith('{')) {
      return parseGoogleError(error.message) ?? error;
    }
    return error;
  } catch {
    return undefined;
  }
}

/** A protobuf Duration in JSON form ("12s", "0.5s") as milliseconds. */
function durationMs(value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)s$/.exec(value.trim());
  return match ? Math.round(Number(match[1]) * 1000) : undefined;
}
