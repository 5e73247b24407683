import contentDisposition from 'content-disposition';
import type { Pool } from '../db/database.ts';
import { findImageRecord } from '../db/image-records.ts';
import type { Scope } from '../db/scope.ts';
import { AppError, notFound } from '../errors.ts';
import { createOutboundFetch, publicAddressesOnly, refusalIn, type OutboundFetch } from '../net/outbound.ts';
import { withReadTimeout } from '../storage/read-timeout.ts';
import { StoreError, type ObjectStore, type StoredObject } from '../storage/store.ts';

/** Where an image's bytes are: its stored object, else the URL its row was saved with (legacy rows). */
export interface ImageSource {
  storageKey: string | null;
  imageUrl: string | null;
  /** The type the row recorded, for an answer that does not say its own. */
  mimeType: string | null;
}

/** How images with only a legacy URL are fetched (server-side, streamed). */
export interface LegacyFetchOptions {
  /** For the answer's head, then for each read of its body (see withReadTimeout). */
  timeoutMs: number;
  /** A larger answer fails part way instead of streaming for ever. */
  maxBytes: number;
  /** Connects only where its address policy allows (src/net/outbound.ts). */
  fetch: OutboundFetch;
}

export const LEGACY_FETCH_DEFAULTS: LegacyFetchOptions = { timeoutMs: 30_000, maxBytes: 50 * 1024 * 1024, fetch: createOutboundFetch(publicAddressesOnly) };

export interface ImageReading {
  store: ObjectStore;
  legacy: LegacyFetchOptions;
}

/**
 * An image opened for reading, or why not. `gone`: the image no longer exists anywhere (no
 * object under its key, its URL answers 404 or 410, a URL that can never be fetched): a 404.
 * Otherwise it may come back (the store or the URL's server failing, slow or refusing): a 503.
 */
export type ImageOpening = { ok: true; image: StoredObject } | { ok: false; gone: boolean; reason: string };

/**
 * Opens an image's bytes as a stream: its stored object (store.get, whatever the store's
 * visibility: never a signed URL), else its legacy URL, fetched here. Only http(s) URLs are ever
 * fetched, and inline base64 images (data:image/…;base64) decoded: any other URL (file:, a data:
 * URL of another kind, …) is refused, so a stored URL can never make the service read something
 * other than a remote image. Failures are answered, not thrown, but for a bug.
 */
export async function openImage(ctx: ImageReading, source: ImageSource, signal?: AbortSignal): Promise<ImageOpening> {
  if (source.storageKey !== null) {
    try {
      const image = await ctx.store.get(source.storageKey);
      return image ? { ok: true, image } : { ok: false, gone: true, reason: 'its stored object is missing' };
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      return { ok: false, gone: false, reason: `the store cannot read it: ${err.message}` };
    }
  }
  const url = source.imageUrl;
  if (url === null) return { ok: false, gone: true, reason: 'this slot has no image' };
  if (url.startsWith('data:')) return inlineImage(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, gone: true, reason: 'its URL is not a URL' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, gone: true, reason: `its URL is ${parsed.protocol} (only http and https URLs are fetched)` };
  }
  return fetchLegacyImage(parsed, source.mimeType, ctx.legacy, signal);
}

/** `data:image/<type>[;params];base64,<payload>`, the only inline form legacy rows hold (see projects/legacy.ts). */
const DATA_IMAGE = /^data:(image\/[a-z0-9.+-]+)((?:;[^,;]*)*);base64,([A-Za-z0-9+/]*={0,2})$/i;

function inlineImage(url: string): ImageOpening {
  const match = DATA_IMAGE.exec(url);
  if (!match || match[3]!.length === 0) return { ok: false, gone: true, reason: 'its URL is a data: URL that is not a base64 image' };
  // Already in memory (it came with the row): one chunk.
  const bytes = new Uint8Array(Buffer.from(match[3]!, 'base64'));
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
  return { ok: true, image: { body, contentType: match[1]!.toLowerCase(), size: bytes.byteLength } };
}

async function fetchLegacyImage(url: URL, recordedType: string | null, options: LegacyFetchOptions, signal?: AbortSignal): Promise<ImageOpening> {
  const request = new AbortController();
  const stop = () => request.abort(signal?.reason);
  signal?.addEventListener('abort', stop, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    request.abort(new DOMException(`no answer within ${options.timeoutMs} ms`, 'TimeoutError'));
  }, options.timeoutMs);
  let res: Response;
  try {
    // Redirects are followed, each hop to http(s) only and to an address the policy allows.
    res = await options.fetch(url, { signal: request.signal, headers: { accept: 'image/*' } });
  } catch (err) {
    signal?.removeEventListener('abort', stop);
    // Never fetchable from here, whenever asked: gone (a 404), not a failure that may pass.
    const refused = refusalIn(err);
    if (refused) return { ok: false, gone: true, reason: `its URL is refused: ${refused.message}` };
    if (timedOut) return { ok: false, gone: false, reason: `its URL did not answer within ${options.timeoutMs} ms` };
    return { ok: false, gone: false, reason: `its URL cannot be fetched (${networkReason(err)})` };
  } finally {
    clearTimeout(timer);
  }
  const refuse = (gone: boolean, reason: string): ImageOpening => {
    signal?.removeEventListener('abort', stop);
    res.body?.cancel().catch(() => {});
    return { ok: false, gone, reason };
  };
  if (res.status === 404 || res.status === 410) return refuse(true, `its URL answers HTTP ${res.status}`);
  if (!res.ok) return refuse(false, `its URL answers HTTP ${res.status}`);
  const declared = essence(res.headers.get('content-type') ?? '');
  const contentType = declared.startsWith('image/') ? declared : declared === '' || declared === 'application/octet-stream' ? recordedImageType(recordedType, url) : undefined;
  if (!contentType) return refuse(false, `its URL answers ${declared}, not an image`);
  const length = res.headers.get('content-encoding') ? null : res.headers.get('content-length');
  const size = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
  if (size !== undefined && size > options.maxBytes) return refuse(false, `its URL answers ${size} bytes, more than the ${options.maxBytes} fetched`);

  const failed = (err: unknown) => new Error(`the image at its URL broke off: ${timedOut ? 'timed out' : networkReason(err)}`, { cause: err });
  const timed = withReadTimeout(res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() }), {
    timeoutMs: options.timeoutMs,
    onTimeout: (reason) => {
      timedOut = true;
      request.abort(reason);
    },
    mapError: failed,
  });
  const body = atMost(timed, options.maxBytes, () => signal?.removeEventListener('abort', stop));
  return { ok: true, image: { body, contentType, ...(size !== undefined ? { size } : {}) } };
}

/** `body`, erroring once more than `maxBytes` came through; `done` runs once when it ends in any way. */
function atMost(body: ReadableStream<Uint8Array>, maxBytes: number, done: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let total = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done: end, value } = await reader.read();
          if (end) {
            done();
            return controller.close();
          }
          total += value.byteLength;
          if (total > maxBytes) throw new Error(`the image at its URL is larger than the ${maxBytes} bytes fetched`);
          controller.enqueue(value);
        } catch (err) {
          done();
          reader.cancel(err).catch(() => {});
          controller.error(err);
        }
      },
      cancel(reason) {
        done();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** For an answer that did not say it is an image: the row's recorded type, else its URL's extension. */
function recordedImageType(recorded: string | null, url: URL): string | undefined {
  if (recorded && essence(recorded).startsWith('image/')) return essence(recorded);
  const ext = /\.([a-z0-9]{1,5})$/i.exec(url.pathname)?.[1]?.toLowerCase();
  return ext ? Object.entries(EXTENSIONS).find(([, e]) => e === ext || (ext === 'jpeg' && e === 'jpg'))?.[0] : undefined;
}

function networkReason(err: unknown): string {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name } = e as { code?: unknown; name?: unknown };
    if (typeof code === 'string') return code;
    if (name === 'TimeoutError' || name === 'AbortError') return name;
  }
  return (err as Error)?.message ?? String(err);
}

function essence(mediaType: string): string {
  return mediaType.split(';')[0]!.trim().toLowerCase();
}

const EXTENSIONS: Readonly<Record<string, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/avif': 'avif',
  'image/svg+xml': 'svg',
  'image/bmp': 'bmp',
  'image/tiff': 'tiff',
};

/** The file extension for an image of this type; a type we do not know keeps its key's extension, else bin. */
export function extensionOf(contentType: string, keyOrUrl?: string | null): string {
  const known = EXTENSIONS[essence(contentType)];
  if (known) return known;
  const own = keyOrUrl && !keyOrUrl.startsWith('data:') ? /\.([a-z0-9]{1,5})$/i.exec(keyOrUrl.split(/[?#]/)[0]!)?.[1] : undefined;
  return own?.toLowerCase() ?? 'bin';
}

/** A file name in two spellings: as readable as the title allows, and in plain ASCII for old clients. */
export interface FileName {
  name: string;
  ascii: string;
}

const MAX_SLUG = 80;

/**
 * The title as a file name part: lower case, letters and digits of any script, runs of anything
 * else one dash; its ASCII spelling drops accents (é → e) and what has no ASCII form. An empty
 * result, or no title, is "project". Pure.
 */
export function titleSlug(title: string | null): FileName {
  const cut = (s: string) => Array.from(s).slice(0, MAX_SLUG).join('').replace(/-+$/, '');
  const slug = (s: string, keep: RegExp) => cut(s.toLowerCase().replace(keep, '-').replace(/^-+|-+$/g, '')) || 'project';
  const text = title ?? '';
  return {
    name: slug(text.normalize('NFC'), /[^\p{L}\p{N}]+/gu),
    ascii: slug(text.normalize('NFKD').replace(/\p{M}/gu, ''), /[^a-z0-9]+/gi),
  };
}

/** `<title>-scene-<sceneIndex>-image-<imageIndex + 1>.<ext>`: the name people see, counting images from 1. */
export function imageFileName(title: string | null, sceneIndex: number, imageIndex: number, ext: string): FileName {
  const { name, ascii } = titleSlug(title);
  const rest = `-scene-${sceneIndex}-image-${imageIndex + 1}.${ext}`;
  return { name: name + rest, ascii: ascii + rest };
}

/** The Content-Disposition of a download: the ASCII name in filename, the readable one in filename* when it differs. */
export function attachment(file: FileName): string {
  return contentDisposition(file.name, { fallback: file.ascii });
}

export interface ImageDownload {
  body: ReadableStream<Uint8Array>;
  contentType: string;
  size: number | undefined;
  file: FileName;
}

/**
 * The bytes of one of the caller's images, with the name to save them under. NOT_FOUND when the
 * image is not in the caller's scope, its slot has no image, or the image is gone; UNAVAILABLE
 * when its store or its legacy URL cannot give it now.
 */
export async function downloadImage(ctx: ImageReading & { sql: Pool }, scope: Scope, id: string, signal?: AbortSignal): Promise<ImageDownload> {
  const record = await findImageRecord(ctx.sql, scope, id);
  if (!record || (record.storageKey === null && record.imageUrl === null)) throw notFound('image');
  const opened = await openImage(ctx, record, signal);
  if (!opened.ok) {
    const message = `image ${id} cannot be downloaded: ${opened.reason}`;
    throw new AppError(opened.gone ? 'NOT_FOUND' : 'UNAVAILABLE', opened.gone ? message : `${message}; try again later`);
  }
  const { body, contentType, size } = opened.image;
  const ext = extensionOf(contentType, record.storageKey ?? record.imageUrl);
  return { body, contentType, size, file: imageFileName(record.projectTitle, record.sceneIndex, record.imageIndex, ext) };
}
