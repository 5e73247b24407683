/** Where image bytes live permanently. Keys are never reused: a new image gets a new key. */
export interface ObjectStore {
  readonly name: string;
  /** Prepares the store at start (e.g. creates a missing bucket). Throws when it cannot be used. */
  init?(): Promise<void>;
  /**
   * Stores the bytes under `key` with this content type, and returns the permanent URL
   * clients use to fetch them, or null when objects are private and every read signs a
   * fresh URL (see signUrls). Throws (never returns) when the object was not stored.
   */
  put(key: string, bytes: Uint8Array, contentType: string): Promise<{ url: string | null }>;
  /** Removes objects; removing a missing object is not an error. */
  remove(keys: readonly string[]): Promise<void>;
  /**
   * For private objects: a fresh signed URL for each key, in one call for many. Keys it
   * could not sign are absent from the map.
   */
  signUrls?(keys: readonly string[]): Promise<Map<string, string>>;
  /** How long a signed URL lives, in seconds (so cached answers never outlive them). */
  readonly signedUrlTtlS?: number;
}
