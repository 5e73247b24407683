import { setTimeout as sleep } from 'node:timers/promises';
import { badResponse, httpFailure, isAbortError, networkFailure } from './errors.ts';
import { downloadImage, probeImage } from './image-bytes.ts';
import { ProviderError, type GeneratedImage, type GenerateRequest, type ImageProvider } from './provider.ts';

// Plain fetch, not the `replicate` SDK: its `request()` retries every 429 (and every 5xx on a
// GET) up to five more times, back to back (its delay is never an integer, so it never sleeps),
// and no option turns that off. A custom `fetch` cannot stop it either: whatever that fetch
// throws is swallowed and retried by the same loop. Retrying is the runner's job, with its backoff
// and its Retry-After, so one generate() must be exactly the requests it appears to make.

const NAME = 'replicate';
const DEFAULT_BASE_URL = 'https://api.replicate.com/v1';
const RUNNING = new Set(['starting', 'processing']);
/** How Replicate's models word a refusal (flux: "All generated images contained NSFW content…"). */
const CONTENT_POLICY = /nsfw|safety|content polic|sensitive/i;
/** owner/name (an official model) or owner/name:version (a pinned version of any model). */
const MODEL = /^([\w.-]+)\/([\w.-]+)(?::(\w+))?$/;

export interface ReplicateProviderOptions {
  apiToken: string;
  /** The API root, /v1 included; https://api.replicate.com/v1 when absent. */
  baseUrl?: string | undefined;
  /** The default model: 'owner/name' or 'owner/name:version'. */
  model: string;
  concurrency?: number | undefined;
  /** Between two GETs of a prediction that Prefer: wait did not see finish. */
  pollIntervalMs?: number | undefined;
}

interface Prediction {
  id: string;
  status: string;
  output?: unknown;
  error?: unknown;
}

export function createReplicateProvider(options: ReplicateProviderOptions): ImageProvider {
  if (!MODEL.test(options.model)) throw new Error(`REPLICATE_MODEL "${options.model}" is not owner/name or owner/name:version`);
  const base = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const auth = { authorization: `Bearer ${options.apiToken}` };

  /** The create call: a version goes to /predictions, an official model to its own route. */
  function createRoute(model: string): { url: string; version?: string } {
    const match = MODEL.exec(model);
    if (!match) throw new ProviderError(NAME, `${NAME}: model "${model}" is not owner/name or owner/name:version`, { transient: false, code: 'bad_request' });
    const [, owner, name, version] = match;
    if (version) return { url: `${base}/predictions`, version };
    return { url: `${base}/models/${encodeURIComponent(owner!)}/${encodeURIComponent(name!)}/predictions` };
  }

  async function call(url: string, init: RequestInit, signal: AbortSignal): Promise<Prediction> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { ...init, signal });
      text = await res.text();
    } catch (err) {
      if (signal.aborted || isAbortError(err)) throw err;
      throw networkFailure(NAME, err);
    }
    const body = parseJson(text);
    if (!res.ok) {
      const message = errorMessage(body) ?? (text.slice(0, 300) || res.statusText);
      // Replicate's 429 says how long in the Retry-After header, in retry_after, or only in words.
      const retryAfter = res.headers.get('retry-after') ?? retryAfterSeconds(body, message);
      throw httpFailure(NAME, res.status, message, { headers: { 'retry-after': retryAfter }, contentPolicy: CONTENT_POLICY.test(message) });
    }
    if (!isPrediction(body)) throw badResponse(NAME, `expected a prediction, got ${JSON.stringify(text.slice(0, 200))}`);
    return body;
  }

  /** A prediction left running after our caller gave up is still billed: ask Replicate to stop it. */
  function cancelQuietly(id: string): void {
    const url = `${base}/predictions/${encodeURIComponent(id)}/cancel`;
    fetch(url, { method: 'POST', headers: auth, signal: AbortSignal.timeout(5_000) }).then(
      (res) => res.body?.cancel(),
      () => {},
    );
  }

  return {
    name: NAME,
    defaultModel: options.model,
    concurrency: options.concurrency,
    async generate(request: GenerateRequest): Promise<GeneratedImage> {
      const { signal } = request;
      const model = request.model ?? options.model;
      const route = createRoute(model);
      const input = { prompt: request.fullPrompt, aspect_ratio: request.aspectRatio, seed: request.seed, num_outputs: 1, output_format: 'png' };
      // Prefer: wait holds the create call open (up to 60 s) until the prediction is done.
      let prediction = await call(
        route.url,
        {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json', prefer: 'wait' },
          body: JSON.stringify(route.version ? { version: route.version, input } : { input }),
        },
        signal,
      );
      const id = prediction.id;
      try {
        while (RUNNING.has(prediction.status)) {
          await sleep(pollIntervalMs, undefined, { signal });
          prediction = await call(`${base}/predictions/${encodeURIComponent(id)}`, { headers: auth }, signal);
        }
      } catch (err) {
        if (signal.aborted) cancelQuietly(id);
        throw err;
      }

      if (prediction.status === 'failed') {
        const message = typeof prediction.error === 'string' && prediction.error ? prediction.error : `prediction failed (${JSON.stringify(prediction.error ?? null)})`;
        // We send a fixed seed, so the same prompt would be refused again: a refusal is permanent.
        const refused = CONTENT_POLICY.test(message);
        throw new ProviderError(NAME, `${NAME}: prediction ${id} failed: ${message}`, {
          transient: !refused,
          code: refused ? 'content_policy' : 'server',
          providerRequestId: id,
        });
      }
      if (prediction.status === 'canceled') {
        throw new ProviderError(NAME, `${NAME}: prediction ${id} was canceled`, { transient: true, code: 'server', providerRequestId: id });
      }
      if (prediction.status !== 'succeeded') throw badResponse(NAME, `prediction ${id} has unknown status "${prediction.status}"`, { providerRequestId: id });

      const urls = outputUrls(prediction.output);
      if (urls.length === 0) throw badResponse(NAME, `prediction ${id} succeeded without an output URL`, { providerRequestId: id });
      // Replicate deletes outputs after an hour: fetch every one now; the first is the image.
      const [bytes] = await Promise.all(urls.map((url) => downloadImage(NAME, url, signal)));
      const probed = await probeImage(NAME, bytes!);
      return { bytes: bytes!, ...probed, seed: request.seed, model, providerRequestId: id };
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isPrediction(body: unknown): body is Prediction {
  const p = body as Partial<Prediction> | null | undefined;
  return typeof p === 'object' && p !== null && typeof p.id === 'string' && p.id !== '' && typeof p.status === 'string';
}

/**
 * Replicate's error bodies, {detail} or problem+json {title, detail, status}, on one line:
 * a 422's detail lists one "- field: reason" line per field the model's schema refused.
 */
function errorMessage(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { detail, title } = body as { detail?: unknown; title?: unknown };
  const reasons = typeof detail === 'string' ? detail.split('\n').map((line) => line.trim().replace(/^- /, '')).filter(Boolean).join('; ') : '';
  const heading = typeof title === 'string' ? title : '';
  return (reasons && heading ? `${heading}: ${reasons}` : reasons || heading) || undefined;
}

/** Seconds from the body's retry_after, else from "…resets in ~30s." in the documented 429 detail. */
function retryAfterSeconds(body: unknown, message: string): string | undefined {
  const field = (body as { retry_after?: unknown } | undefined)?.retry_after;
  if (typeof field === 'number' && Number.isFinite(field) && field >= 0) return String(field);
  return /resets in ~?(\d+(?:\.\d+)?)\s*s/i.exec(message)?.[1];
}

/** An image model's output: one URL, or an array of them. */
function outputUrls(output: unknown): string[] {
  const items = Array.isArray(output) ? output : [output];
  return items.filter((item): item is string => typeof item === 'string' && item !== '');
}
