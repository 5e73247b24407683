/** Where image bytes live permanently. Keys are never reused: a new image gets a new key. */
export interface ObjectStore {
  readonly name: string;
  /** Prepares the store at start (e.g. creates a missing bucket). Throws when it cannot be used. */
  init?(): Promise<void>;
  /**
   * Stores the bytes under `key` with this content type, and returns the permanent URL
   * clients use to fetch them, or null when objects are private and every read signs a
   * fresh URL (see signUrls). Throws (never returns) when the object was not stored; a
   * StoreError says whether trying again can help.
   *
   * A put that repeats an earlier put of the same key with the same bytes and content type must
   * succeed, also when the earlier one stored the object but its answer was lost: callers retry a
   * failed put with the same key. A put of other bytes under a key that holds an object must fail,
   * permanently, and leave that object as it is.
   */
  put(key: string, bytes: Uint8Array, contentType: string): Promise<{ url: string | null }>;
  /**
   * Reads one object as a stream, never holding the whole object in memory; undefined when there
   * is no object under `key` (a key of a shape the store never stores included). Throws a
   * StoreError when the store cannot answer. The caller reads the body to its end or cancels it:
   * either releases what the read holds (a file, a connection). A body whose source fails or
   * hangs part way errors with a StoreError.
   */
  get(key: string): Promise<StoredObject | undefined>;
  /** Removes objects; removing a missing object is not an error. */
  remove(keys: readonly string[]): Promise<void>;
  /**
   * For private objects: a fresh signed URL for each key, in one call for many. Keys it
   * could not sign are absent from the map.
   */
  signUrls?(keys: readonly string[]): Promise<Map<string, string>>;
  /** How long a signed URL lives, in seconds (so cached answers never outlive them). */
  readonly signedUrlTtlS?: number;
  /** Objects have no permanent URL: every read signs fresh ones (signUrls), also for rows saved with a URL. */
  readonly private?: boolean;
  /**
   * Removes every object whose key starts with `prefix` (a folder: ends with '/'); nothing
   * there is not an error. For stores that can list: catches objects no row names any more.
   */
  removePrefix?(prefix: string): Promise<void>;
}

/** An object being read: its bytes as they come, its content type, and its size when the store knows it. */
export interface StoredObject {
  body: ReadableStream<Uint8Array>;
  contentType: string;
  size?: number;
}

/**
 * A store operation that failed. `permanent`: the same request will fail again however often it
 * is repeated (a key of the wrong shape, an object too large or of a type the bucket refuses, a
 * refused key or policy, other bytes already under the key), so a caller gives up at once and
 * reports the message. Not permanent: the network, a timeout, an overloaded or failing server;
 * trying again later may succeed.
 *
 * `code` names the failure when there is a name for it, for logs and tests: the store's or the
 * vendor's code (Supabase Storage's `EntityTooLarge`, `InvalidMimeType`, `AccessDenied`,
 * `KeyAlreadyExists`, `InternalError`, ...; `InvalidKey` for a key of the wrong shape), or the
 * network error's (`ECONNREFUSED`, `ECONNRESET`, `TimeoutError`). Decide on `permanent`, never on
 * `code`: the codes are open-ended.
 */
export class StoreError extends Error {
  readonly permanent: boolean;
  readonly code: string | undefined;
  constructor(message: string, options: { permanent: boolean; code?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreError';
    this.permanent = options.permanent;
    this.code = options.code;
  }
}
