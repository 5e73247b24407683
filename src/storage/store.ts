/** Where image bytes live permanently. Keys are never reused: a new image gets a new key. */
export interface ObjectStore {
  readonly name: string;
  /** Stores the bytes under `key` and returns the URL clients use to fetch them. */
  put(key: string, bytes: Uint8Array, contentType: string): Promise<{ url: string }>;
  /** Removes an object; removing a missing object is not an error. */
  remove(keys: readonly string[]): Promise<void>;
}
