import type { AspectRatio } from '../generation/aspect-ratio.ts';
import { httpFailure, isAbortError, networkFailure } from './errors.ts';
import { probeImage } from './image-bytes.ts';
import { ProviderError, type GeneratedImage, type GenerateRequest, type ImageProvider } from './provider.ts';

const PROVIDER = 'stability';
const DEFAULT_BASE_URL = 'https://api.stability.ai';

export interface StabilityProviderOptions {
  apiKey: string;
  /** Up to, not including, /v2beta. Default https://api.stability.ai. */
  baseUrl?: string | undefined;
  /** 'core', 'ultra', or an SD3 model ('sd3.5-large', 'sd3.5-large-turbo', 'sd3.5-medium', …). */
  model: string;
  concurrency?: number | undefined;
}

/**
 * The Stable Image API accepts 16:9 1:1 21:9 2:3 3:2 4:5 5:4 9:16 9:21 only; 4:3 and 3:4
 * go to the nearest accepted shape (5:4 is 6% off 4:3, 3:2 is 12% off).
 */
export const STABILITY_ASPECT_RATIOS: Readonly<Record<AspectRatio, string>> = {
  '1:1': '1:1',
  '16:9': '16:9',
  '9:16': '9:16',
  '4:3': '5:4',
  '3:4': '4:5',
  '3:2': '3:2',
  '2:3': '2:3',
};

/** Where a model is served: core and ultra have endpoints of their own; SD3 models share one and are named in a field. */
export function stabilityEndpoint(model: string): { path: string; modelField: string | undefined } | undefined {
  if (model === 'core' || model === 'ultra') return { path: `/v2beta/stable-image/generate/${model}`, modelField: undefined };
  if (/^sd3(\.\d+)?(-[a-z]+)*$/.test(model)) return { path: '/v2beta/stable-image/generate/sd3', modelField: model };
  return undefined;
}

/**
 * Stability AI's Stable Image API (v2beta) over plain fetch: one multipart POST per image,
 * the PNG bytes in the answer, seed and finish reason in its headers. No retries here: the
 * runner retries what is transient.
 */
export function createStabilityProvider(options: StabilityProviderOptions): ImageProvider {
  if (!stabilityEndpoint(options.model)) throw new Error(`stability: unknown model "${options.model}" (core, ultra or an sd3 model)`);
  const baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
  return {
    name: PROVIDER,
    defaultModel: options.model,
    concurrency: options.concurrency,
    async generate(request: GenerateRequest): Promise<GeneratedImage> {
      const model = request.model ?? options.model;
      const endpoint = stabilityEndpoint(model);
      if (!endpoint) {
        throw new ProviderError(PROVIDER, `${PROVIDER}: unknown model "${model}" (core, ultra or an sd3 model)`, { transient: false, code: 'bad_request' });
      }
      const form = new FormData();
      form.set('prompt', request.fullPrompt);
      form.set('aspect_ratio', STABILITY_ASPECT_RATIOS[request.aspectRatio]);
      form.set('seed', String(request.seed));
      form.set('output_format', 'png');
      if (endpoint.modelField) form.set('model', endpoint.modelField);

      let res: Response;
      try {
        res = await fetch(baseUrl + endpoint.path, {
          method: 'POST',
          // fetch writes the multipart content-type with its boundary itself.
          headers: { authorization: `Bearer ${options.apiKey}`, accept: 'image/*', 'stability-client-id': 'sceneworks' },
          body: form,
          signal: request.signal,
        });
      } catch (err) {
        if (request.signal.aborted || isAbortError(err)) throw err;
        throw networkFailure(PROVIDER, err);
      }
      const requestId = res.headers.get('x-request-id') ?? undefined;
      if (!res.ok) throw await failureOf(res, requestId, request.signal);

      if (res.headers.get('finish-reason') === 'CONTENT_FILTERED') {
        // The answer is a blurred image: a success on the wire, a refusal for us.
        await res.body?.cancel().catch(() => {});
        throw new ProviderError(PROVIDER, `${PROVIDER}: the output was filtered by the content policy (finish-reason CONTENT_FILTERED)`, {
          transient: false,
          code: 'content_policy',
          status: res.status,
          providerRequestId: requestId,
        });
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await res.arrayBuffer());
      } catch (err) {
        if (request.signal.aborted || isAbortError(err)) throw err;
        throw networkFailure(PROVIDER, err);
      }
      const { mimeType, width, height } = await probeImage(PROVIDER, bytes);
      // The seed actually used: the API picks one when sent 0.
      const seedHeader = res.headers.get('seed')?.trim();
      return {
        bytes,
        mimeType,
        width,
        height,
        seed: seedHeader && /^\d+$/.test(seedHeader) ? Number(seedHeader) : request.seed,
        model,
        providerRequestId: requestId ?? null,
      };
    },
  };
}

/**
 * A non-2xx answer as a ProviderError. The body is JSON {id, name, errors[]} from the API
 * itself, but a proxy in front may answer HTML or nothing: keep whatever text there is.
 */
async function failureOf(res: Response, requestId: string | undefined, signal: AbortSignal): Promise<ProviderError> {
  let text = '';
  try {
    text = await res.text();
  } catch (err) {
    if (signal.aborted || isAbortError(err)) throw err;
  }
  let body: { id?: unknown; name?: unknown; errors?: unknown } | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') body = parsed as typeof body;
  } catch {
    // not JSON: the raw text is the message
  }
  const name = typeof body?.name === 'string' ? body.name : undefined;
  const errors = Array.isArray(body?.errors) ? body.errors.filter((e): e is string => typeof e === 'string') : [];
  const detail = errors.length > 0 ? errors.join('; ') : body ? '' : text.trim().slice(0, 500);
  const message = [name, detail].filter(Boolean).join(': ') || res.statusText || 'no details';
  const providerRequestId = requestId ?? (typeof body?.id === 'string' ? body.id : undefined);

  const moderated =
    name === 'content_moderation' || ((res.status === 400 || res.status === 422) && /moderat|content polic/i.test(message));
  if (moderated) {
    // httpFailure reads any 403 as a bad key; Stability's 403 is its content moderation.
    return new ProviderError(PROVIDER, `${PROVIDER} ${res.status}: ${message}`, {
      transient: false,
      code: 'content_policy',
      status: res.status,
      providerRequestId,
    });
  }
  return httpFailure(PROVIDER, res.status, message, { headers: res.headers, providerRequestId });
}
