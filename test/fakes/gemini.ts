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
  | 'text_only'; // 200, finishReason STOP, only a text part

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
      case undefined: {
        const ratio = body.generationConfig?.imageConfig?.aspectRatio ?? '1:1';
        const size = GEMINI_SIZES[ratio];
        if (!size) return googleError(res, 400, 'INVALID_ARGUMENT', `Unsupported aspect ratio: ${ratio}`);
        const png = await renderPng(size.width, size.height);
        return json(res, 200, candidate(recorded.model, 'STOP', [
          { text: 'Here is the image you asked for.' },
          { inlineData: { mimeType: 'image/png', data: png.toString('base64') } },
        ]));
      }
    }
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
