import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * A fake of Stability AI's Stable Image API (v2beta generate), as a real HTTP server on
 * 127.0.0.1: multipart/form-data in, image bytes (or base64 JSON) out, seed and
 * finish-reason in the headers, errors as JSON {id, name, errors[]}.
 */

export type StabilityFault =
  | 'rate_limit' // 429, Retry-After: 2
  | 'server_error' // 500 JSON
  | 'unavailable' // 503 HTML, as a load balancer answers
  | 'hang' // never answers; the connection stays open until the client gives up
  | 'garbage' // 200 image/png whose bytes are not an image
  | 'moderation' // 403 content_moderation
  | 'content_filtered' // 200 with a (blurred) image and finish-reason CONTENT_FILTERED
  | 'unauthorized' // 401
  | 'payment_required'; // 402

export interface StabilityRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The multipart fields as parsed (string fields only; this API takes no files for generate). */
  fields: Record<string, string>;
  /** The client closed the connection before an answer (an abort). */
  aborted: boolean;
}

export interface FakeStability {
  url: string;
  apiKey: string;
  requests: StabilityRequest[];
  /** Queues faults; each answers one request, in order, before normal service resumes. */
  script(...faults: StabilityFault[]): void;
  close(): Promise<void>;
}

const RATIOS = ['16:9', '1:1', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'];
const SD3_MODELS = ['sd3.5-large', 'sd3.5-large-turbo', 'sd3.5-medium', 'sd3.5-flash', 'sd3-large', 'sd3-large-turbo', 'sd3-medium'];
const FORMATS: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** The size this fake renders for an accepted aspect ratio: about 0.1 MP, multiples of 8 (small, to keep tests fast). */
export function fakeImageSize(aspectRatio: string): { width: number; height: number } {
  const [w, h] = aspectRatio.split(':').map(Number) as [number, number];
  const width = Math.round(Math.sqrt((320 * 320 * w) / h) / 8) * 8;
  const height = Math.round((width * h) / w / 8) * 8;
  return { width, height };
}

export async function startFakeStability(): Promise<FakeStability> {
  const apiKey = `sk-fake-${randomBytes(8).toString('hex')}`;
  const requests: StabilityRequest[] = [];
  const faults: StabilityFault[] = [];

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'internal_error', [`fake: ${(err as Error).message}`]);
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const contentType = req.headers['content-type'] ?? '';
    let fields: Record<string, string> = {};
    let parsedForm = false;
    if (contentType.startsWith('multipart/form-data')) {
      try {
        const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
        fields = Object.fromEntries([...form.entries()].map(([k, v]) => [k, typeof v === 'string' ? v : `<file ${v.name}>`]));
        parsedForm = true;
      } catch {
        // reported as a 400 below
      }
    }
    const recorded: StabilityRequest = { method: req.method ?? '', path: url.pathname, headers: req.headers, fields, aborted: false };
    requests.push(recorded);
    res.on('close', () => {
      if (!res.writableFinished) recorded.aborted = true;
    });

    const endpoint = /^\/v2beta\/stable-image\/generate\/(core|ultra|sd3)$/.exec(url.pathname)?.[1];
    if (!endpoint) return sendError(res, 404, 'not_found', [`${url.pathname} not found`]);
    if (req.method !== 'POST') return sendError(res, 405, 'method_not_allowed', [`${req.method} is not allowed`]);
    if (req.headers.authorization !== `Bearer ${apiKey}`) {
      return sendError(res, 401, 'unauthorized', ['authorization: invalid or missing API key']);
    }

    const fault = faults.shift();
    if (fault) return sendFault(res, fault);

    const accept = req.headers.accept ?? 'image/*';
    if (accept !== 'image/*' && accept !== 'application/json') {
      return sendError(res, 400, 'bad_request', ['accept: must be image/* or application/json']);
    }
    if (!parsedForm) return sendError(res, 400, 'bad_request', ['content-type: must be multipart/form-data']);
    const problems: string[] = [];
    const prompt = fields.prompt ?? '';
    if (prompt.length < 1 || prompt.length > 10_000) problems.push('prompt: must be 1 to 10000 characters');
    const aspectRatio = fields.aspect_ratio ?? '1:1';
    if (!RATIOS.includes(aspectRatio)) problems.push(`aspect_ratio: must be one of ${RATIOS.join(', ')}`);
    const format = fields.output_format ?? 'png';
    if (!FORMATS[format]) problems.push('output_format: must be one of jpeg, png, webp');
    const seedText = fields.seed ?? '0';
    const seed = Number(seedText);
    if (!/^\d+$/.test(seedText) || seed > 4_294_967_294) problems.push('seed: must be an integer from 0 to 4294967294');
    if (endpoint === 'sd3' && fields.model !== undefined && !SD3_MODELS.includes(fields.model)) {
      problems.push(`model: must be one of ${SD3_MODELS.join(', ')}`);
    }
    if (problems.length > 0) return sendError(res, 400, 'bad_request', problems);

    const usedSeed = seed === 0 ? randomInt(1, 2 ** 32 - 1) : seed;
    const image = await render(aspectRatio, usedSeed, format);
    sendImage(res, accept, format, image, usedSeed, 'SUCCESS');
  }

  async function sendFault(res: ServerResponse, fault: StabilityFault) {
    switch (fault) {
      case 'rate_limit':
        return sendError(res, 429, 'rate_limit_exceeded', ['You have exceeded the rate limit of 150 requests per 10 seconds.'], { 'retry-after': '2' });
      case 'server_error':
        return sendError(res, 500, 'internal_error', ['An unexpected server error occurred, please try again.']);
      case 'unavailable':
        res.writeHead(503, { 'content-type': 'text/html' });
        return res.end('<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>');
      case 'hang':
        return; // the answer never comes; close() drops the connection
      case 'garbage':
        res.writeHead(200, { 'content-type': 'image/png', seed: '7', 'finish-reason': 'SUCCESS', 'x-request-id': requestId() });
        return res.end(Buffer.from('this is not a png, just some bytes'));
      case 'moderation':
        return sendError(res, 403, 'content_moderation', [
          'Your request was flagged by our content moderation system, as a result your request was denied and you were not charged.',
        ]);
      case 'content_filtered':
        return sendImage(res, 'image/*', 'png', await render('1:1', 1, 'png', true), 1, 'CONTENT_FILTERED');
      case 'unauthorized':
        return sendError(res, 401, 'unauthorized', ['authorization: invalid or missing API key']);
      case 'payment_required':
        return sendError(res, 402, 'payment_required', ['You lack sufficient credits to make this request. Please purchase more credits.']);
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    requests,
    script: (...more) => void faults.push(...more),
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

function requestId(): string {
  return randomBytes(16).toString('hex');
}

function sendError(res: ServerResponse, status: number, name: string, errors: string[], headers: Record<string, string> = {}) {
  const id = requestId();
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': id, ...headers });
  res.end(JSON.stringify({ id, name, errors }));
}

function sendImage(res: ServerResponse, accept: string, format: string, image: Buffer, seed: number, finishReason: string) {
  const headers = { seed: String(seed), 'finish-reason': finishReason, 'x-request-id': requestId() };
  if (accept === 'application/json') {
    res.writeHead(200, { ...headers, 'content-type': `application/json; type=${FORMATS[format]}` });
    res.end(JSON.stringify({ image: image.toString('base64'), finish_reason: finishReason, seed }));
  } else {
    res.writeHead(200, { ...headers, 'content-type': FORMATS[format] });
    res.end(image);
  }
}

/** A real image of the ratio's size, its colour from the seed; blurred when filtered, as the API does. */
async function render(aspectRatio: string, seed: number, format: string, blurred = false): Promise<Buffer> {
  const { width, height } = fakeImageSize(aspectRatio);
  const background = { r: seed % 256, g: (seed >>> 8) % 256, b: (seed >>> 16) % 256 };
  let image = sharp({ create: { width, height, channels: 3, background } });
  if (blurred) image = image.blur(20);
  return image.toFormat(format as 'png' | 'jpeg' | 'webp').toBuffer();
}
