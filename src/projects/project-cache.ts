/**
 * Serialized project answers of this process, each labelled with the version it was read
 * at (see findProjectVersion). A hit costs one cheap query instead of decoding every image
 * row and serializing again. Bounded by bytes (least recently used out first) and by age.
 */
export interface ProjectCache {
  get(id: string, version: string): string | undefined;
  set(id: string, version: string, json: string): void;
}

export function createProjectCache(options: { maxBytes: number; maxAgeMs: number; now?: () => number }): ProjectCache {
  const now = options.now ?? Date.now;
  const entries = new Map<string, { version: string; json: string; at: number }>();
  let bytes = 0;

  function drop(id: string) {
    const entry = entries.get(id);
    if (!entry) return;
    bytes -= entry.json.length;
    entries.delete(id);
  }

  return {
    get(id, version) {
      const entry = entries.get(id);
      if (!entry) return undefined;
      if (entry.version !== version || now() - entry.at > options.maxAgeMs) {
        drop(id);
        return undefined;
      }
      // Most recently used last: Map keeps insertion order.
      entries.delete(id);
      entries.set(id, entry);
      return entry.json;
    },
    set(id, version, json) {
      drop(id);
      if (json.length > options.maxBytes) return;
      entries.set(id, { version, json, at: now() });
      bytes += json.length;
      for (const oldest of entries.keys()) {
        if (bytes <= options.maxBytes) break;
        drop(oldest);
      }
    },
  };
}
