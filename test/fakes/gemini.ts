import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * What the next request gets instead of an image, in the order scripted. Each one is consumed
 * by one request; with the queue empty the fake answers normally.
 */
export type GeminiFault =
  | 'rate_limited' // 429 RESOURCE_EXHAUSTED, Retry-After: 12 and RetryInfo retryDelay "12s"
  | 'server_error' // 500 INTERNAL
  | 'unavailable' // 503 UNAVAILABLE
  | 'hang' // never answers
  | 'malformed_json' // 200 with a truncated JSON body
  | 'prompt_blocked' // 200, promptFeedback.blockReason SAFETY, no candidates
  | 'image_safety' // 200, finishReason IMAGE_SAFETY, a text part and no image
  | 'invalid_argument' // 400 INVALID_ARGUMENT (a request the API rejects)
  | 'bad_key' // 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID
  | 'permission_denied' // 403 PERMISSION_DENIED
  | 'text_only' // 200, finishReason STOP, only a text part
  | 'thinking' // 200, as a thinking model answers: a thought, a draft image marked thought (half size), then the final image
  | 'thoughts_only'; // 200, finishReason STOP, a thought and a draft image marked thought, no final image

export interface RecordedGeminiRequest {
  method: string;
  path: string;
  /** The model named in the path (`models/{model}:generateContent`). */
  model: string | undefined;
  headers: IncomingMessage['headers'];
  body: any;
  /** Set when the client went away before the fake answered. */
  aborted: boolean;
}

export interface FakeGemini {
  /** The base URL to give the SDK (httpOptions.baseUrl). */
  url: string;
  apiKey: string;
  requests: RecordedGeminiRequest[];
  script(...faults: GeminiFault[]): void;
  close(): Promise<void>;
}

/** Output sizes of gemini-2.5-flash-image per aspect ratio: not sceneworks' own sizes. */
export const GEMINI_SIZES: Readonly<Record<string, { width: number; height: number }>> = {
  '1:1': { width: 1024, height: 1024 },
  '16:9': { width: 1344, height: 768 },
  '9:16': { width: 768, height: 1344 },
  '4:3': { width: 1184, height: 864 },
  '3:4': { width: 864, height: 1184 },
  '3:2': { width: 1248, height: 832 },
  '2:3': { width: 832, height: 1248 },
  '21:9': { width: 1536, height: 672 },
  '4:5': { width: 896, height: 1152 },
  '5:4': { width: 1152, height: 896 },
};

export const RETRY_DELAY_SECONDS = 12;

const GENERATE_PATH = /^\/v1beta\/models\/([^/:]+):generateContent$/;

/** A fake Gemini API on 127.0.0.1, speaking the generateContent wire format. */
export async function startFakeGemini(): Promise<FakeGemini> {
  const apiKey = `AIza-fake-${randomBytes(8).toString('hex')}`;
  const requests: RecordedGeminiRequest[] = [];
  const faults: GeminiFault[] = [];

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) googleError(res, 500, 'INTERNAL', `fake gemini: ${(err as Error).message}`);
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await readBody(req);
    let body: any = null;
    try {
      body = raw ? JSON.parse(raw) : null;
    } catch {
      // recorded as null; answered below
    }
    const recorded: RecordedGeminiRequest = {
      method: req.method ?? '',
      path: url.pathname,
      model: GENERATE_PATH.exec(url.pathname)?.[1],
      headers: req.headers,
      body,
      aborted: false,
    };
    requests.push(recorded);
    res.on('close', () => (recorded.aborted = !res.writableFinished));

    if (req.method !== 'POST' || !recorded.model) return googleError(res, 404, 'NOT_FOUND', `Method not found: ${url.pathname}`);
    const key = req.headers['x-goog-api-key'] ?? url.searchParams.get('key');
    if (!key) {
      return googleError(res, 403, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
    }
    const fault = key === apiKey ? faults.shift() : 'bad_key';
    if (fault === 'bad_key') {
      return googleError(res, 400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } },
      ]);
    }
    if (body === null) return googleError(res, 400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
    // Checked before any scripted answer, as the API parses a request before it generates.
    const invalid = invalidRequest(body);
    if (invalid) return googleError(res, 400, 'INVALID_ARGUMENT', invalid.message, invalid.details);

    switch (fault) {
      case 'rate_limited':
        res.setHeader('retry-after', String(RETRY_DELAY_SECONDS));
        return googleError(res, 429, 'RESOURCE_EXHAUSTED', 'You exceeded your current quota, please check your plan and billing details.', [
          { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_requests', quotaId: 'GenerateRequestsPerMinutePerProjectPerModel' }] },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${RETRY_DELAY_SECONDS}s` },
        ]);
      case 'server_error':
        return googleError(res, 500, 'INTERNAL', 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting');
      case 'unavailable':
        return googleError(res, 503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
      case 'invalid_argument':
        return googleError(res, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.');
      case 'permission_denied':
        return googleError(res, 403, 'PERMISSION_DENIED', 'The caller does not have permission');
      case 'hang':
        return; // the socket stays open until the client gives up or the fake closes
      case 'malformed_json':
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return void res.end('{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "da');
      case 'prompt_blocked':
        return json(res, 200, { promptFeedback: { blockReason: 'SAFETY', safetyRatings: [] }, ...meta(recorded.model) });
      case 'image_safety':
        return json(res, 200, candidate(recorded.model, 'IMAGE_SAFETY', [{ text: 'I cannot create that image: it may violate the safety policy.' }]));
      case 'text_only':
        return json(res, 200, candidate(recorded.model, 'STOP', [{ text: 'Here is a description of the scene you asked for, in words only.' }]));
    }
    const config = body.generationConfig ?? body.generation_config ?? {};
    // A model asked for text alone answers in words.
    if (!modalitiesOf(config).includes('IMAGE')) {
      return json(res, 200, candidate(recorded.model, 'STOP', [{ text: 'A lighthouse stands on a rocky point at dusk, its beam sweeping the sea.' }]));
    }
    const size = GEMINI_SIZES[(config.imageConfig ?? config.image_config)?.aspectRatio ?? '1:1']!;
    const final = { inlineData: { mimeType: 'image/png', data: (await renderPng(size.width, size.height)).toString('base64') } };
    // A thinking model's drafts: smaller than the final image, so a test can tell them apart.
    const thoughts = [
      { text: '**Composing the scene**\nPlacing the subject on the left third, warm light from the right.', thought: true },
      { inlineData: { mimeType: 'image/png', data: (await renderPng(Math.round(size.width / 2), Math.round(size.height / 2))).toString('base64') }, thought: true },
    ];
    if (fault === 'thinking') return json(res, 200, candidate(recorded.model, 'STOP', [...thoughts, { text: 'Here is the image you asked for.' }, { ...final, thoughtSignature: randomBytes(24).toString('base64') }]));
    if (fault === 'thoughts_only') return json(res, 200, candidate(recorded.model, 'STOP', thoughts));
    return json(res, 200, candidate(recorded.model, 'STOP', [{ text: 'Here is the image you asked for.' }, final]));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    script: (...next) => void faults.push(...next),
    async close() {
      server.closeAllConnections(); // hung requests included
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/** GenerateContentRequest fields, by the camelCase name the API also accepts in snake_case. */
const REQUEST_FIELDS = new Set(['model', 'contents', 'tools', 'toolConfig', 'safetySettings', 'systemInstruction', 'generationConfig', 'cachedContent']);
const GENERATION_CONFIG_FIELDS = new Set([
  'stopSequences', 'responseMimeType', 'responseSchema', 'responseJsonSchema', 'responseModalities', 'candidateCount', 'maxOutputTokens',
  'temperature', 'topP', 'topK', 'seed', 'presencePenalty', 'frequencyPenalty', 'responseLogprobs', 'logprobs',
  'enableEnhancedCivicAnswers', 'speechConfig', 'thinkingConfig', 'imageConfig', 'mediaResolution',
]);
const IMAGE_CONFIG_FIELDS = new Set(['aspectRatio', 'imageSize']);
const MODALITIES = new Set(['MODALITY_UNSPECIFIED', 'TEXT', 'IMAGE', 'AUDIO']);
/** What the image models answer with; they refuse AUDIO. */
const IMAGE_MODEL_MODALITIES = new Set(['TEXT', 'IMAGE']);
/** The aspect ratios gemini-2.5-flash-image and gemini-3-pro-image take, in the order the API lists them. */
const ASPECT_RATIOS = ['1:1', '2:3', '3:2', '3:4', '4:3', '4:5', '5:4', '9:16', '16:9', '21:9'];

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** What the API refuses before generating, with its wording (400 INVALID_ARGUMENT); undefined when it would generate. */
function invalidRequest(body: any): { message: string; details?: unknown[] } | undefined {
  const config = body.generationConfig ?? body.generation_config;
  const imageConfig = config?.imageConfig ?? config?.image_config;
  const violations = [
    ...unknownNames(body, REQUEST_FIELDS, undefined),
    ...unknownNames(config, GENERATION_CONFIG_FIELDS, 'generation_config'),
    ...unknownNames(imageConfig, IMAGE_CONFIG_FIELDS, 'generation_config.image_config'),
  ];
  const modalities = Array.isArray(config?.responseModalities ?? config?.response_modalities) ? (config.responseModalities ?? config.response_modalities) as unknown[] : [];
  modalities.forEach((value, i) => {
    if (typeof value !== 'string' || !MODALITIES.has(value.toUpperCase())) {
      const field = `generation_config.response_modalities[${i}]`;
      violations.push({ field, description: `Invalid value at '${field}' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), ${JSON.stringify(value)}` });
    }
  });
  if (violations.length > 0) {
    return { message: violations.map((v) => v.description).join('\n'), details: [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: violations }] };
  }
  const unsupported = modalitiesOf(config ?? {}).filter((m) => !IMAGE_MODEL_MODALITIES.has(m));
  if (unsupported.length > 0) return { message: `Model does not support the requested response modalities: ${unsupported.map((m) => m.toLowerCase()).join(', ')}` };
  const ratio = imageConfig?.aspectRatio ?? imageConfig?.aspect_ratio;
  if (ratio !== undefined && !ASPECT_RATIOS.includes(ratio)) {
    const allowed = ASPECT_RATIOS.map((r) => `'${r}'`);
    return { message: `* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of ${allowed.slice(0, -1).join(', ')}, or ${allowed.at(-1)}.\n` };
  }
  return undefined;
}

/** Google's "Unknown name" violations for the keys of `object` outside `known` (compared in camelCase). */
function unknownNames(object: unknown, known: Set<string>, at: string | undefined): { field?: string; description: string }[] {
  if (typeof object !== 'object' || object === null) return [];
  return Object.keys(object)
    .filter((name) => !known.has(camel(name)))
    .map((name) => ({
      ...(at ? { field: at } : {}),
      description: `Invalid JSON payload received. Unknown name ${JSON.stringify(name)}${at ? ` at '${at}'` : ''}: Cannot find field.`,
    }));
}

/** The modalities asked for, upper-cased; none named means the image model's default, text and image. */
function modalitiesOf(config: any): string[] {
  const given = config.responseModalities ?? config.response_modalities;
  return Array.isArray(given) && given.length > 0 ? given.map((m: string) => m.toUpperCase()) : ['TEXT', 'IMAGE'];
}

function meta(model: string) {
  return { modelVersion: model, responseId: randomBytes(12).toString('base64url') };
}

function candidate(model: string, finishReason: string, parts: unknown[]) {
  return {
    candidates: [{ content: { role: 'model', parts }, finishReason, index: 0 }],
    usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 1290, totalTokenCount: 1302 },
    ...meta(model),
  };
}

function renderPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png().toBuffer();
}

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

function googleError(res: ServerResponse, code: number, status: string, message: string, details?: unknown[]) {
  json(res, code, { error: { code, message, status, ...(details ? { details } : {}) } });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
