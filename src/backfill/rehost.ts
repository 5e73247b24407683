import { createHash, randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import type { Pool } from '../db/database.ts';
import {
  markLegacyImagesRehosted,
  markLegacyImagesUnfetchable,
  readLegacyCandidates,
  type LegacyCandidate,
  type RehostedImage,
  type UnfetchableImage,
} from '../db/rehost.ts';
import { isAbortError } from '../providers/errors.ts';
import { probeImage } from '../providers/image-bytes.ts';
import { ProviderError } from '../providers/provider.ts';
import { refusalIn, type OutboundFetch } from '../net/outbound.ts';
import type { ObjectStore } from '../storage/store.ts';

export interface RehostOptions {
  /** Downloads (and stores) in flight at once; bounded by batchSize too. */
  concurrency: number;
  /** Each download, headers and body, is cut off after this long. */
  timeoutMs: number;
  /** How URLs are fetched: public addresses only unless LEGACY_FETCH_ALLOW_PRIVATE (deps.legacyFetch). */
  fetch: OutboundFetch;
  batchSize: number;
  projectId?: string | undefined;
  /** Called after each batch has been written. */
  onProgress?: (p: { done: number; rehosted: number; failed: number }) => void;
  /** Every candidate that could not be rehosted, once recorded: `reason` is the message on its row. */
  onFailure?: (f: { projectId: string; sceneIndex: number; imageIndex: number; url: string; reason: string; reasonKey: RehostFailureReason }) => void;
}

export interface RehostSummary {
  candidates: number;
  rehosted: number;
  /** Rows marked failed, plus candidates left as they were because the store refused them (store_error). */
  failed: number;
  /** Every reason key, 0 when none. */
  failedByReason: Record<string, number>;
  /** Rows changed between read and write (e.g. regenerated): left alone, and our object removed. */
  superseded: number;
}

/** Why a candidate could not be rehosted: the key counts it, the message goes on the row. */
export const REHOST_FAILURE_REASONS = ['http_404', 'http_error', 'timeout', 'network', 'refused_address', 'not_image', 'bad_data_url', 'store_error'] as const;
export type RehostFailureReason = (typeof REHOST_FAILURE_REASONS)[number];

class UnfetchableError extends Error {
  readonly reason: RehostFailureReason;
  constructor(reason: RehostFailureReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

type Outcome =
  | { kind: 'rehosted'; candidate: LegacyCandidate; image: RehostedImage }
  | { kind: 'unfetchable'; candidate: LegacyCandidate; reason: RehostFailureReason; error: string }
  /** The store refused the object: the row is left as it is and the next run tries again. */
  | { kind: 'store_error'; candidate: LegacyCandidate; error: string };

/**
 * Copies legacy images (rows that still point at a provider URL, which expires within
 * hours, or at an inline data: URL) into the object store. Keyset batches of rows by id:
 * read a batch in one query, download under p-limit with no transaction open, then write
 * each outcome kind in one fenced statement. A candidate that cannot be fetched is data:
 * its row becomes 'failed' (so POST /projects/:id/generate regenerates it), never the
 * failure of the run. A rerun finds no candidates, but those a store failure left as they were.
 */
export async function rehostLegacyImages(sql: Pool, store: ObjectStore, o: RehostOptions): Promise<RehostSummary> {
  const summary: RehostSummary = {
    candidates: 0,
    rehosted: 0,
    failed: 0,
    failedByReason: Object.fromEntries(REHOST_FAILURE_REASONS.map((r) => [r, 0])),
    superseded: 0,
  };
  const limit = pLimit(Math.max(1, o.concurrency));
  let after: string | null = null;
  for (;;) {
    const candidates = await readLegacyCandidates(sql, { after, limit: o.batchSize, projectId: o.projectId });
    if (candidates.length === 0) break;
    after = candidates[candidates.length - 1]!.id;
    summary.candidates += candidates.length;

    const outcomes = await Promise.all(candidates.map((c) => limit(() => rehostOne(store, c, o))));

    const rehosted = outcomes.flatMap((x) => (x.kind === 'rehosted' ? [x] : []));
    const committed = await markLegacyImagesRehosted(sql, rehosted.map((x) => x.image));
    const orphans = rehosted.filter((x) => !committed.has(x.candidate.id)).map((x) => x.image.storageKey);
    // The fence failed for these: the object we stored must never be referenced. If removing
    // fails, it stays an object no row references (its -legacy- key tells it apart): harmless.
    if (orphans.length > 0) await store.remove(orphans).catch(() => {});
    summary.rehosted += committed.size;
    summary.superseded += orphans.length;

    const unfetchable = outcomes.flatMap((x) => (x.kind === 'unfetchable' ? [x] : []));
    const failedIds = await markLegacyImagesUnfetchable(
      sql,
      unfetchable.map((x): UnfetchableImage => ({ id: x.candidate.id, generation: x.candidate.generation, originalUrl: x.candidate.imageUrl, error: x.error })),
    );
    summary.superseded += unfetchable.length - failedIds.size;

    const failures = [
      ...unfetchable.filter((x) => failedIds.has(x.candidate.id)),
      ...outcomes.flatMap((x) => (x.kind === 'store_error' ? [{ ...x, reason: 'store_error' as const }] : [])),
    ];
    for (const f of failures) {
      summary.failed += 1;
      summary.failedByReason[f.reason]! += 1;
      const { projectId, sceneIndex, imageIndex, imageUrl } = f.candidate;
      o.onFailure?.({ projectId, sceneIndex, imageIndex, url: displayUrl(imageUrl), reason: f.error, reasonKey: f.reason });
    }
    o.onProgress?.({ done: summary.candidates, rehosted: summary.rehosted, failed: summary.failed });
    if (candidates.length < o.batchSize) break;
  }
  return summary;
}

async function rehostOne(store: ObjectStore, candidate: LegacyCandidate, o: Pick<RehostOptions, 'timeoutMs' | 'fetch'>): Promise<Outcome> {
  let image: { bytes: Uint8Array; mimeType: string; width: number; height: number };
  try {
    image = await legacyImageBytes(candidate.imageUrl, o);
  } catch (err) {
    if (!(err instanceof UnfetchableError)) throw err;
    return { kind: 'unfetchable', candidate, reason: err.reason, error: err.message };
  }
  const key = legacyImageKey(candidate, image.mimeType);
  let url: string | null;
  try {
    ({ url } = await store.put(key, image.bytes, image.mimeType));
  } catch (err) {
    return { kind: 'store_error', candidate, error: `legacy image could not be stored: ${(err as Error).message}` };
  }
  return {
    kind: 'rehosted',
    candidate,
    image: {
      id: candidate.id,
      generation: candidate.generation,
      originalUrl: candidate.imageUrl,
      url,
      storageKey: key,
      width: image.width,
      height: image.height,
      mimeType: image.mimeType,
      bytes: image.bytes.byteLength,
      sha256: createHash('sha256').update(image.bytes).digest('hex'),
    },
  };
}

/** The bytes of a legacy URL, checked to be an image; throws UnfetchableError with the reason. */
async function legacyImageBytes(url: string, o: Pick<RehostOptions, 'timeoutMs' | 'fetch'>) {
  const { bytes, declaredType } = url.startsWith('data:') ? decodeDataUrl(url) : await download(url, o);
  try {
    return { bytes, ...(await probeImage('legacy', bytes)) };
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    throw new UnfetchableError('not_image', `legacy image is not an image (${declaredType ?? 'no content type'}, ${bytes.byteLength} bytes)`);
  }
}

async function download(url: string, { timeoutMs, fetch }: Pick<RehostOptions, 'timeoutMs' | 'fetch'>): Promise<{ bytes: Uint8Array; declaredType: string | undefined }> {
  const fail = (reason: RehostFailureReason, what: string) => new UnfetchableError(reason, `legacy image could not be fetched: ${what}`);
  // One signal for headers and body: a server that trickles its body is cut off too.
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, { signal });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw fail(res.status === 404 ? 'http_404' : 'http_error', `HTTP ${res.status}`);
    }
    const declaredType = res.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() || undefined;
    return { bytes: new Uint8Array(await res.arrayBuffer()), declaredType };
  } catch (err) {
    if (err instanceof UnfetchableError) throw err;
    if (isAbortError(err) || signal.aborted) throw fail('timeout', `timed out after ${timeoutMs} ms`);
    const refused = refusalIn(err);
    if (refused) throw fail('refused_address', refused.message);
    const cause = (err as Error).cause as { code?: string; message?: string } | undefined;
    throw fail('network', `network error (${cause?.code ?? cause?.message ?? (err as Error).message})`);
  }
}

/** `data:[<type>][;param]*;base64,<payload>`; Buffer.from would silently skip bad characters, so check first. */
const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*);base64,([A-Za-z0-9+/]*={0,2})$/i;

function decodeDataUrl(url: string): { bytes: Uint8Array; declaredType: string | undefined } {
  const match = DATA_URL.exec(url);
  const payload = match?.[3] ?? '';
  const unpadded = payload.replace(/=+$/, '');
  const paddingOk = unpadded.length === payload.length || payload.length % 4 === 0;
  if (!match || unpadded.length === 0 || unpadded.length % 4 === 1 || !paddingOk) {
    throw new UnfetchableError('bad_data_url', 'legacy image is a malformed data: URL');
  }
  return { bytes: new Uint8Array(Buffer.from(payload, 'base64')), declaredType: match[1]?.toLowerCase() || undefined };
}

const EXTENSIONS: Readonly<Record<string, string>> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/gif': 'gif' };

/**
 * A new key for each attempt (keys are never reused): a run killed after storing, or a
 * superseded write, leaves an object no row references, never one a row could overwrite.
 */
export function legacyImageKey(c: { projectId: string; sceneIndex: number; imageIndex: number }, mimeType: string): string {
  const ext = EXTENSIONS[mimeType] ?? 'bin';
  return `projects/${c.projectId}/scene-${c.sceneIndex}/image-${c.imageIndex}-legacy-${randomBytes(6).toString('hex')}.${ext}`;
}

/** A legacy URL fit for a log line: data: URLs can be megabytes. */
function displayUrl(url: string): string {
  return url.startsWith('data:') ? `${url.slice(0, 40)}… (${url.length} chars)` : url;
}
