import { AppError } from '../errors.ts';

/**
 * The opaque cursor of a keyset-paginated list: the last row's position as PostgreSQL's UTC
 * timestamp text and its id. It keeps the microseconds, so rows of the same millisecond are
 * never skipped.
 */
export function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

const PG_TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Only a position this API could have made gets to PostgreSQL: anything else (tampered,
 * truncated, an impossible date) is a 400 naming `cursor`, never a 500 from a failed cast.
 */
export function decodeCursor(cursor: string): { at: string; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof at !== 'string' || !PG_TIMESTAMP.test(at) || !isRealInstant(at) || typeof id !== 'string' || !UUID.test(id)) {
      throw new Error('bad cursor');
    }
    return { at, id };
  } catch {
    throw new AppError('VALIDATION_FAILED', 'invalid cursor', [{ path: ['cursor'], message: 'not a cursor returned by this API' }]);
  }
}

/**
 * '2026-02-30 25:61:00+00' has the shape of a timestamp but names no instant, and PostgreSQL
 * has no year 0 (1 BC comes before AD 1): it would refuse both.
 */
function isRealInstant(pg: string): boolean {
  const iso = `${pg.slice(0, 10)}T${pg.slice(11, 19)}Z`;
  const date = new Date(iso);
  return !Number.isNaN(date.getTime()) && date.getUTCFullYear() >= 1 && date.toISOString().slice(0, 19) === iso.slice(0, 19);
}
