import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * What the fake does with one generation request, taken in order from the script queue
 * ('ok' once the queue is empty):
 * - ok: the image, as b64_json or as a URL, whichever the request asked for (dall-e's default is url)
 * - url: a URL to the image whatever was asked (an answer that forgot response_format)
 * - url_404: a URL whose download answers 404 (an expired output)
 * - wrong_size: a 256x256 image whatever size was asked
 * - no_image: 200 with `data: []`
 * - malformed: 200 with a truncated JSON body
 * - rate_limit: 429 with Retry-After (7 s unless options.retryAfterSeconds says otherwise)
 * - server_error: 500; unavailable: 503
 * - hang: never answers (until close)
 * - content_policy: 400, as the safety system refuses (moderation_blocked, or content_policy_violation for dall-e)
 * - bad_key: 401 invalid_api_key, as for a revoked key
 */
export type OpenAIFault =
  | 'ok'
  | 'url'
  | 'url_404'
  | 'wrong_size'
  | 'no_image'
  | 'malformed'
  | 'rate_limit'
  | 'server_error'
  | 'unavailable'
  | 'hang'
  | 'content_policy'
  | 'bad_key';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when it was not JSON). */
  body: any;
  /** The x-request-id the fake answered with. */
  requestId: string;
  /** When it arrived (Date.now()). */
  at: number;
}

export interface FakeOpenAI {
  /** The API root to give the SDK as baseURL (it ends in /v1, like https://api.openai.com/v1). */
  url: string;
  apiKey: string;
  /** Every API request received, in order. */
  requests: RecordedRequest[];
  /** Paths of the image downloads received, in order. */
  downloads: string[];
  script(...faults: OpenAIFault[]): void;
  /** API requests fully answered so far (requests.length - answered() = in flight). */
  answered(): number;
  /** Forgets recorded requests, downloads and any faults still scripted. */
  reset(): void;
  close(): Promise<void>;
}

type Family = 'gpt-image' | 'dall-e-3' | 'dall-e-2';

const SIZES: Readonly<Record<Family, readonly string[]>> = {
  // gpt-image-2 also takes custom WxH sizes; the adapter asks only for these three.
  'gpt-image': ['1024x1024', '1024x1536', '1536x1024', 'auto'],
  'dall-e-3': ['1024x1024', '1792x1024', '1024x1792'],
  'dall-e-2': ['256x256', '512x512', '1024x1024'],
};

/** A fake of OpenAI's Images API (POST /v1/images/generations) on 127.0.0.1, speaking its wire format. */
export async function startFakeOpenAI(options: { retryAfterSeconds?: number; delayMs?: number } = {}): Promise<FakeOpenAI> {
  const retryAfter = String(options.retryAfterSeconds ?? 7);
  const apiKey = `sk-test-${randomBytes(12).toString('hex')}`;
  const requests: RecordedRequest[] = [];
  const downloads: string[] = [];
  const queue: OpenAIFault[] = [];
  const files = new Map<string, { bytes: Buffer; type: string }>();
  let base = '';
  const answered = { count: 0 };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, `req_${randomBytes(16).toString('hex')}`, 500, String(err), 'server_error', null);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');

    if (req.method === 'GET' && path.startsWith('/files/')) {
      downloads.push(path);
      const file = files.get(path);
      if (!file) {
        res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>BlobNotFound</Code></Error>');
        return;
      }
      res.writeHead(200, { 'content-type': file.type, 'content-length': file.bytes.byteLength }).end(file.bytes);
      return;
    }

    const requestId = `req_${randomBytes(16).toString('hex')}`;
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    requests.push({ method: req.method ?? '', path, headers: req.headers, body, requestId, at: Date.now() });

    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      const given = req.headers.authorization?.replace(/^Bearer /, '');
      return given
        ? sendError(res, requestId, 401, `Incorrect API key provided: ${mask(given)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key')
        : sendError(res, requestId, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error', null);
    }
    if (req.method !== 'POST' || path !== '/v1/images/generations') {
      return sendError(res, requestId, 404, `Invalid URL (${req.method} ${path})`, 'invalid_request_error', null);
    }
    if (typeof body !== 'object' || body === null) {
      return sendError(res, requestId, 400, 'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly.)', 'invalid_request_error', null);
    }

    const fault = queue.shift() ?? 'ok';
    // A model takes time: answers (of every kind) come after delayMs.
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
    res.once('finish', () => answered.count++);
    switch (fault) {
      case 'bad_key':
        return sendError(res, requestId, 401, `Incorrect API key provided: ${mask(apiKey)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key');
      case 'rate_limit':
        return sendError(res, requestId, 429, `Rate limit reached for images per minute (IPM): Limit 5, Used 5, Requested 1. Please try again in ${retryAfter}s.`, 'requests', 'rate_limit_exceeded', { 'retry-after': retryAfter });
      case 'server_error':
        return sendError(res, requestId, 500, 'The server had an error processing your request. Sorry about that! You can retry your request.', 'server_error', null);
      case 'unavailable':
        return sendError(res, requestId, 503, 'The engine is currently overloaded, please try again later.', 'server_error', null);
      case 'hang':
        return; // the socket stays open until the client gives up or close() destroys it
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': requestId }).end('{"created": 1735689600, "data": [{"b64_json": "iVBORw0KGgoAAAANSU');
        return;
    }

    const model: string = typeof body.model === 'string' ? body.model : 'dall-e-2';
    const family: Family = model.startsWith('dall-e-3') ? 'dall-e-3' : model.startsWith('dall-e-2') ? 'dall-e-2' : 'gpt-image';
    const invalid = validate(body, family);
    if (invalid) return sendError(res, requestId, 400, invalid.message, 'invalid_request_error', invalid.code, {}, invalid.param);

    if (fault === 'content_policy') {
      return family === 'gpt-image'
        ? sendError(res, requestId, 400, `Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID ${requestId}.`, 'image_generation_user_error', 'moderation_blocked')
        : sendError(res, requestId, 400, 'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.', 'invalid_request_error', 'content_policy_violation');
    }
    if (fault === 'no_image') return sendJson(res, requestId, 200, { created: now(), data: [] });

    const size = fault === 'wrong_size' ? '256x256' : typeof body.size === 'string' && body.size !== 'auto' ? body.size : '1024x1024';
    const [width, height] = size.split('x').map(Number) as [number, number];
    const format: 'png' | 'jpeg' | 'webp' = family === 'gpt-image' && ['jpeg', 'webp'].includes(body.output_format) ? body.output_format : 'png';
    const bytes = await image(width, height, format);
    const asUrl = fault === 'url' || fault === 'url_404' || (family !== 'gpt-image' && body.response_format !== 'b64_json');
    const entries = Array.from({ length: Number(body.n ?? 1) }, () => {
      const entry: Record<string, string> = {};
      if (asUrl) {
        const filePath = `/files/img-${randomBytes(8).toString('hex')}.${format}`;
        if (fault !== 'url_404') files.set(filePath, { bytes, type: `image/${format}` });
        entry.url = `${base}${filePath}`;
      } else {
        entry.b64_json = bytes.toString('base64');
      }
      if (family === 'dall-e-3') entry.revised_prompt = `A detailed rendering of: ${body.prompt}`;
      return entry;
    });
    const answer: Record<string, unknown> = { created: now(), data: entries };
    if (family === 'gpt-image') {
      const textTokens = Math.ceil(String(body.prompt).length / 4);
      Object.assign(answer, {
        background: 'opaque',
        output_format: format,
        quality: 'medium',
        size,
        usage: { input_tokens: textTokens, input_tokens_details: { image_tokens: 0, text_tokens: textTokens }, output_tokens: 1056, total_tokens: textTokens + 1056 },
      });
    }
    sendJson(res, requestId, 200, answer);
  }

  const imageCache = new Map<string, Buffer>();
  async function image(width: number, height: number, format: 'png' | 'jpeg' | 'webp'): Promise<Buffer> {
    const key = `${width}x${height}.${format}`;
    let bytes = imageCache.get(key);
    if (!bytes) {
      bytes = await sharp({ create: { width, height, channels: 3, background: { r: 40, g: 90, b: 160 } } }).toFormat(format).toBuffer();
      imageCache.set(key, bytes);
    }
    return bytes;
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: `${base}/v1`,
    apiKey,
    requests,
    downloads,
    answered: () => answered.count,
    script(...faults) {
      queue.push(...faults);
    },
    reset() {
      requests.length = 0;
      downloads.length = 0;
      queue.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/** The body parameters POST /v1/images/generations knows; any other is refused by name. */
const PARAMETERS = new Set([
  'prompt', 'model', 'n', 'size', 'quality', 'style', 'user', 'response_format',
  'background', 'moderation', 'output_compression', 'output_format', 'partial_images', 'stream',
]);

/** The longest prompt each family takes, in characters. */
const PROMPT_LIMITS: Readonly<Record<Family, number>> = { 'gpt-image': 32_000, 'dall-e-3': 4_000, 'dall-e-2': 1_000 };

type Invalid = { message: string; param: string | null; code: string };

/**
 * The checks the real API makes before generating, with its wording (as its 400s read):
 * unknown parameters, then types, then values the model does not take.
 */
function validate(body: Record<string, unknown>, family: Family): Invalid | undefined {
  const unknown = Object.keys(body).find((key) => !PARAMETERS.has(key));
  if (unknown !== undefined) return { message: `Unknown parameter: '${unknown}'.`, param: unknown, code: 'unknown_parameter' };
  if (body.prompt === undefined || body.prompt === '') return { message: "Missing required parameter: 'prompt'.", param: 'prompt', code: 'missing_required_parameter' };
  for (const [param, type] of [['prompt', 'string'], ['model', 'string'], ['size', 'string'], ['response_format', 'string'], ['n', 'integer']] as const) {
    if (body[param] !== undefined && typeOf(body[param]) !== type) {
      return { message: `Invalid type for '${param}': expected ${article(type)}, but got ${article(typeOf(body[param]))} instead.`, param, code: 'invalid_type' };
    }
  }
  const prompt = body.prompt as string;
  if (prompt.length > PROMPT_LIMITS[family]) {
    return { message: `Prompt must be length ${PROMPT_LIMITS[family]} or less. Your prompt length is ${prompt.length}. Please reduce your prompt length.`, param: null, code: 'invalid_value' };
  }
  // GPT image models always answer base64 and do not know the parameter at all.
  if (family === 'gpt-image' && body.response_format !== undefined) {
    return { message: "Unknown parameter: 'response_format'.", param: 'response_format', code: 'unknown_parameter' };
  }
  if (body.response_format !== undefined && !['url', 'b64_json'].includes(body.response_format as string)) {
    return { message: `Invalid value: '${body.response_format}'. Supported values are: 'url' and 'b64_json'.`, param: 'response_format', code: 'invalid_value' };
  }
  if (body.size !== undefined && !SIZES[family].includes(body.size as string)) {
    return family === 'gpt-image'
      ? { message: `Invalid value: '${body.size}'. Supported values are: ${listOf(SIZES[family])}.`, param: 'size', code: 'invalid_value' }
      : { message: 'The size is not supported by this model.', param: null, code: 'invalid_size' };
  }
  const n = (body.n ?? 1) as number;
  if (n < 1) return { message: `Invalid 'n': integer below minimum value. Expected a value >= 1, but got ${n} instead.`, param: 'n', code: 'integer_below_min_value' };
  if (n > 10) return { message: `Invalid 'n': integer above maximum value. Expected a value <= 10, but got ${n} instead.`, param: 'n', code: 'integer_above_max_value' };
  if (family === 'dall-e-3' && n !== 1) return { message: 'You must provide n=1 for this model.', param: 'n', code: 'invalid_value' };
  return undefined;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'decimal';
  return typeof value === 'object' ? 'object' : typeof value;
}

function article(type: string): string {
  return type === 'null' ? 'null' : `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

/** 'a', 'b', and 'c', as the API lists supported values. */
function listOf(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`);
  return quoted.length < 3 ? quoted.join(' and ') : `${quoted.slice(0, -1).join(', ')}, and ${quoted.at(-1)}`;
}

function sendError(
  res: ServerResponse,
  requestId: string,
  status: number,
  message: string,
  type: string,
  code: string | null,
  headers: Record<string, string> = {},
  param: string | null = null,
): void {
  sendJson(res, requestId, status, { error: { message, type, param, code } }, headers);
}

function sendJson(res: ServerResponse, requestId: string, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': requestId, 'openai-processing-ms': '12', ...headers }).end(text);
}

function mask(key: string): string {
  return key.length > 8 ? `${key.slice(0, 3)}*****${key.slice(-4)}` : key;
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
