import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from '../../src/db/database.ts';

export async function statusCounts(sql: Pool, projectId: string): Promise<Record<string, number>> {
  const rows = await sql<{ status: string; n: number }[]>`
    SELECT status, count(*)::int AS n FROM generated_images WHERE content_creation_request_id = ${projectId} GROUP BY status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Every object file in a local store's folder, as keys. */
export async function storedKeys(dataDir: string): Promise<string[]> {
  const root = path.join(dataDir, 'files');
  try {
    const files = await readdir(root, { recursive: true, withFileTypes: true });
    return files.filter((f) => f.isFile()).map((f) => path.relative(root, path.join(f.parentPath, f.name))).sort();
  } catch {
    return [];
  }
}

export async function referencedKeys(sql: Pool): Promise<string[]> {
  const rows = await sql<{ storageKey: string }[]>`SELECT storage_key FROM generated_images WHERE storage_key IS NOT NULL ORDER BY storage_key`;
  return rows.map((r) => r.storageKey).sort();
}

export async function postProject(baseUrl: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${baseUrl}/projects`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}
