import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';

/**
 * One scripted outcome of a create call, taken in order; unscripted calls succeed.
 * - '429': Retry-After: 2 header, retry_after: 2 in the body; '429-body': only retry_after: 3;
 *   '429-detail': only the documented detail "…resets in ~30s."
 * - '500' (JSON detail), '503' (a proxy's plain text), '401' (even with the right token).
 * - 'hang': never answers. 'malformed': a 201 whose JSON is cut off.
 * - 'nsfw': the prediction fails as flux does on NSFW output; 'failed': fails with a CUDA error;
 *   'canceled': comes back canceled.
 * - 'output-404': succeeds, but its output URL answers 404.
 * - 'slow': answers 'starting' despite Prefer: wait; done after `pollsUntilDone` GETs.
 * - 'stuck': answers 'starting' and never finishes.
 * Whatever is scripted, a payload or input the model's schema refuses is answered 422, as
 * Replicate does (after the scripted transport faults: 429, 5xx, 401, hang, malformed).
 */
export type ReplicateFault =
  | '429' | '429-body' | '429-detail' | '500' | '503' | '401' | 'hang' | 'malformed'
  | 'nsfw' | 'failed' | 'canceled' | 'output-404' | 'slow' | 'stuck';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
}

interface StoredPrediction {
  json: Record<string, any>;
  pollsLeft: number;
  finish: () => void;
}

const NSFW_ERROR = 'All generated images contained NSFW content. Try running it again with a different prompt.';

export async function startFakeReplicate(options: { pollsUntilDone?: number } = {}) {
  const token = `r8_${randomBytes(16).toString('hex')}`;
  const requests: RecordedRequest[] = [];
  const queue: ReplicateFault[] = [];
  const predictions = new Map<string, StoredPrediction>();
  const files = new Map<string, Buffer>();
  const server = createServer((req, res) => void handle(req, res).catch((err: Error) => send(res, 500, { detail: err.message })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? '/', origin).pathname;
    const raw = await readBody(req);
    let body: any;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });

    // Output files are public, as on replicate.delivery.
    if (req.method === 'GET' && path.startsWith('/files/')) {
      const file = files.get(path);
      if (!file) return send(res, 404, 'Not Found');
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': file.byteLength }).end(file);
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) return unauthenticated(res);

    let m: RegExpExecArray | null;
    if (req.method === 'POST' && (m = /^\/v1\/models\/([^/]+)\/([^/]+)\/predictions$/.exec(path))) {
      return create(req, res, body, { model: `${m[1]}/${m[2]}`, version: 'official' });
    }
    if (req.method === 'POST' && path === '/v1/predictions') {
      return create(req, res, body, { model: 'owner/pinned', version: body?.version });
    }
    if (req.method === 'GET' && (m = /^\/v1\/predictions\/([^/]+)$/.exec(path))) {
      const stored = predictions.get(m[1]!);
      if (!stored) return send(res, 404, { detail: 'Not found.' });
      if (stored.json.status === 'starting' || stored.json.status === 'processing') {
        stored.pollsLeft -= 1;
        if (stored.pollsLeft <= 0) stored.finish();
        else stored.json.status = 'processing';
      }
      return send(res, 200, stored.json);
    }
    if (req.method === 'POST' && (m = /^\/v1\/predictions\/([^/]+)\/cancel$/.exec(path))) {
      const stored = predictions.get(m[1]!);
      if (!stored) return send(res, 404, { detail: 'Not found.' });
      if (stored.json.status === 'starting' || stored.json.status === 'processing') stored.json.status = 'canceled';
      return send(res, 200, stored.json);
    }
    return send(res, 404, { detail: 'Not found.' });
  }

  async function create(req: IncomingMessage, res: ServerResponse, body: any, model: { model: string; version: string | undefined }) {
    const fault = queue.shift();
    switch (fault) {
      case '429':
        return send(res, 429, { detail: 'Request was throttled. Expected available in 2 seconds.', status: 429, retry_after: 2 }, { 'retry-after': '2' });
      case '429-body':
        return send(res, 429, { detail: 'Request was throttled.', status: 429, retry_after: 3 });
      case '429-detail':
        return send(res, 429, { detail: 'Request was throttled. Your rate limit resets in ~30s.' });
      case '500':
        return send(res, 500, { detail: 'Internal server error' });
      case '503':
        return send(res, 503, 'upstream connect error or disconnect/reset before headers');
      case '401':
        return unauthenticated(res);
      case 'hang':
        return; // the socket stays open until the client gives up or close() ends it
      case 'malformed':
        res.writeHead(201, { 'content-type': 'application/json' }).end('{"id": "gm3qorzd", "status": "succ');
        return;
    }
    const invalid = [...invalidPayload(body, model.version !== 'official'), ...invalidInput(body?.input)];
    if (invalid.length > 0) return send(res, 422, inputValidationFailed(invalid));
    const id = randomBytes(13).toString('hex');
    const json: Record<string, any> = {
      id,
      model: model.model,
      version: model.version,
      input: body?.input ?? {},
      logs: '',
      output: null,
      data_removed: false,
      error: null,
      status: 'starting',
      created_at: new Date().toISOString(),
      urls: { get: `${origin}/v1/predictions/${id}`, cancel: `${origin}/v1/predictions/${id}/cancel`, web: `https://replicate.com/p/${id}` },
    };
    const outputPath = `/files/${id}/out-0.png`;
    if (fault !== 'output-404') files.set(outputPath, await renderOutput(String(json.input.aspect_ratio ?? '1:1')));
    const finish = () => {
      json.completed_at = new Date().toISOString();
      if (fault === 'nsfw') Object.assign(json, { status: 'failed', error: NSFW_ERROR });
      else if (fault === 'failed') Object.assign(json, { status: 'failed', error: 'CUDA error: out of memory' });
      else if (fault === 'canceled') json.status = 'canceled';
      else Object.assign(json, { status: 'succeeded', output: [`${origin}${outputPath}`] });
    };
    const pollsLeft = fault === 'stuck' ? Infinity : (options.pollsUntilDone ?? 2);
    predictions.set(id, { json, pollsLeft, finish });
    const waits = /\bwait\b/.test(String(req.headers.prefer ?? ''));
    if (waits && fault !== 'slow' && fault !== 'stuck') finish();
    return send(res, 201, json);
  }

  return {
    /** The API root, as REPLICATE_BASE_URL: …/v1. */
    url: `${origin}/v1`,
    token,
    requests,
    /** Every prediction created, as last answered. */
    predictions: () => [...predictions.values()].map((p) => p.json),
    script(...faults: ReplicateFault[]) {
      queue.push(...faults);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type FakeReplicate = Awaited<ReturnType<typeof startFakeReplicate>>;

/** One entry of a 422's invalid_fields, as Replicate's JSON Schema validation words it. */
interface InvalidField {
  type: string;
  field: string;
  description: string;
}

/**
 * The input schema of black-forest-labs/flux-schnell (the default model), which the fake
 * applies to every model. Like Replicate, it refuses missing, mistyped and out-of-range
 * values, and lets unknown input keys through: only top-level payload keys are checked.
 */
const INPUT_SCHEMA: Readonly<Record<string, { type: 'string' | 'integer' | 'boolean'; enum?: readonly string[]; minimum?: number; maximum?: number }>> = {
  prompt: { type: 'string' },
  aspect_ratio: { type: 'string', enum: ['1:1', '16:9', '21:9', '3:2', '2:3', '4:5', '5:4', '3:4', '4:3', '9:16', '9:21'] },
  num_outputs: { type: 'integer', minimum: 1, maximum: 4 },
  num_inference_steps: { type: 'integer', minimum: 1, maximum: 4 },
  seed: { type: 'integer' },
  output_format: { type: 'string', enum: ['webp', 'jpg', 'png'] },
  output_quality: { type: 'integer', minimum: 0, maximum: 100 },
  disable_safety_checker: { type: 'boolean' },
  go_fast: { type: 'boolean' },
  megapixels: { type: 'string', enum: ['1', '0.25'] },
};
const REQUIRED_INPUT = ['prompt'];

/** The request body's own keys: a pinned version names itself, an official model's route does not. */
function invalidPayload(body: unknown, pinned: boolean): InvalidField[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return [{ type: 'invalid_type', field: '(root)', description: `Invalid type. Expected: object, given: ${jsonType(body)}` }];
  }
  const allowed = new Set(['input', 'webhook', 'webhook_events_filter', 'stream', ...(pinned ? ['version'] : [])]);
  const required = ['input', ...(pinned ? ['version'] : [])];
  return [
    ...required.filter((key) => !(key in body)).map((key) => ({ type: 'required', field: '', description: `${key} is required` })),
    ...Object.keys(body).filter((key) => !allowed.has(key)).map((key) => ({ type: 'additional_property_not_allowed', field: '', description: `Additional property ${key} is not allowed` })),
  ];
}

function invalidInput(input: unknown): InvalidField[] {
  if (input === undefined) return [];
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return [{ type: 'invalid_type', field: 'input', description: `Invalid type. Expected: object, given: ${jsonType(input)}` }];
  }
  const values = input as Record<string, unknown>;
  const invalid: InvalidField[] = REQUIRED_INPUT.filter((key) => !(key in values)).map((key) => ({ type: 'required', field: 'input', description: `${key} is required` }));
  for (const [key, rule] of Object.entries(INPUT_SCHEMA)) {
    const value = values[key];
    if (value === undefined) continue;
    const field = `input.${key}`;
    if (jsonType(value) !== rule.type) {
      invalid.push({ type: 'invalid_type', field, description: `Invalid type. Expected: ${rule.type}, given: ${jsonType(value)}` });
    } else if (rule.enum && !rule.enum.includes(value as string)) {
      invalid.push({ type: 'enum', field, description: `${key} must be one of the following: ${rule.enum.map((v) => JSON.stringify(v)).join(', ')}` });
    } else if (rule.minimum !== undefined && (value as number) < rule.minimum) {
      invalid.push({ type: 'number_gte', field, description: `Must be greater than or equal to ${rule.minimum}` });
    } else if (rule.maximum !== undefined && (value as number) > rule.maximum) {
      invalid.push({ type: 'number_lte', field, description: `Must be less than or equal to ${rule.maximum}` });
    }
  }
  return invalid;
}

/** Replicate's 422: a detail line per field ("- input.seed: …"), then the fields themselves. */
function inputValidationFailed(invalid: InvalidField[]) {
  const detail = invalid.map((f) => (f.field ? `- ${f.field}: ${f.description}\n` : `- ${f.description}\n`)).join('');
  return { detail, status: 422, title: 'Input validation failed', invalid_fields: invalid };
}

/** A JSON value's type as JSON Schema names it (a whole number is an integer). */
function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const json = typeof body !== 'string';
  res.writeHead(status, { 'content-type': json ? 'application/json' : 'text/plain', ...headers });
  res.end(json ? JSON.stringify(body) : body);
}

function unauthenticated(res: ServerResponse) {
  send(res, 401, { title: 'Unauthenticated', detail: 'You did not pass a valid authentication token', status: 401 });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A real PNG, 10 px per unit of the aspect ratio (16:9 → 160×90), so a test can tell it was probed. */
async function renderOutput(aspectRatio: string): Promise<Buffer> {
  const [w, h] = aspectRatio.split(':').map(Number);
  const width = (w || 1) * 10;
  const height = (h || 1) * 10;
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 120, b: 40 } } }).png().toBuffer();
}
