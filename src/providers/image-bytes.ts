import sharp from 'sharp';
import { badResponse, httpFailure, isAbortError, networkFailure } from './errors.ts';

const FORMATS: Readonly<Record<string, string>> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif' };

/**
 * What the bytes really are: type and size read from the image itself (never trusted from
 * a header or the request). Throws a transient bad_response when they are not an image.
 */
export async function probeImage(provider: string, bytes: Uint8Array): Promise<{ mimeType: string; width: number; height: number }> {
  try {
    const meta = await sharp(bytes).metadata();
    const mimeType = meta.format ? FORMATS[meta.format] : undefined;
    if (!mimeType || !meta.width || !meta.height) throw new Error(`unsupported image format ${meta.format ?? 'unknown'}`);
    return { mimeType, width: meta.width, height: meta.height };
  } catch (err) {
    throw badResponse(provider, `not an image (${bytes.byteLength} bytes): ${(err as Error).message}`, { cause: err });
  }
}

/** Decodes base64 image data from a vendor answer, as bytes. */
export function fromBase64(provider: string, data: unknown): Uint8Array {
  if (typeof data !== 'string' || data.length === 0) throw badResponse(provider, 'no base64 image data');
  return Buffer.from(data, 'base64');
}

/**
 * Downloads an image a vendor serves from a temporary URL (they expire: fetch at once).
 * A 404 there is permanent for this URL but the generation can be repeated: transient.
 */
export async function downloadImage(provider: string, url: string, signal: AbortSignal): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    if (isAbortError(err)) throw err;
    throw networkFailure(provider, err);
  }
  if (!res.ok) {
    await res.body?.cancel();
    const failure = httpFailure(provider, res.status, `downloading the output ${url} failed`, { headers: res.headers });
    // The output is gone or broken; generating again may work.
    throw res.status === 404 || res.status === 410 ? badResponse(provider, `output ${url} answered ${res.status}`) : failure;
  }
  return new Uint8Array(await res.arrayBuffer());
}
