import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { startFakeGemini } from '../fakes/gemini.ts';
import { startFakeOpenAI } from '../fakes/openai.ts';
import { startFakeReplicate } from '../fakes/replicate.ts';
import { startFakeStability } from '../fakes/stability.ts';
import { startTestApp } from '../support/app.ts';

/**
 * Each vendor, selected by environment variables alone (its key and base URL), generates a
 * whole project through the real service; the images are the vendor's bytes, stored.
 */
const vendors = [
  ['openai', async () => { const f = await startFakeOpenAI(); return { env: { OPENAI_API_KEY: f.apiKey, OPENAI_BASE_URL: f.url }, calls: () => f.requests.length, close: f.close }; }],
  ['replicate', async () => { const f = await startFakeReplicate(); return { env: { REPLICATE_API_TOKEN: f.token, REPLICATE_BASE_URL: f.url }, calls: () => f.requests.filter((r: any) => r.method === 'POST').length, close: f.close }; }],
  ['gemini', async () => { const f = await startFakeGemini(); return { env: { GEMINI_API_KEY: f.apiKey, GEMINI_BASE_URL: f.url }, calls: () => f.requests.length, close: f.close }; }],
  ['stability', async () => { const f = await startFakeStability(); return { env: { STABILITY_API_KEY: f.apiKey, STABILITY_BASE_URL: f.url }, calls: () => f.requests.length, close: f.close }; }],
] as const;

describe.each(vendors)('IMAGE_PROVIDER=%s', (name, startFake) => {
  it('generates a project end to end and records what the vendor said', async () => {
    const fake = await startFake();
    const t = await startTestApp({ ...fake.env, IMAGE_PROVIDER: name, RETRY_BASE_MS: '20' });
    try {
      const created = await t.call('POST', '/projects', { scenes: [{ prompt: 'a red kite' }, { prompt: 'a blue boat' }], imagesPerScene: 2, aspectRatio: '3:2', style: 'ink' });
      expect(created.body.settings.provider).toBe(name);
      const done = await t.waitForProject(created.body.id, 30_000);
      expect(done.status).toBe('completed');
      expect(fake.calls()).toBe(4);
      const rows = await t.db.sql<{ provider: string; model: string; width: number; height: number; mimeType: string; fullPrompt: string; providerRequestId: string | null; storageKey: string }[]>`
        SELECT provider, model, width, height, mime_type, full_prompt, provider_request_id, storage_key FROM generated_images
        WHERE content_creation_request_id = ${done.id}`;
      expect(rows).toHaveLength(4);
      for (const row of rows) {
        expect(row.provider).toBe(name);
        expect(row.model).toMatch(/.+/);
        expect(row.fullPrompt).toMatch(/^a (red kite|blue boat)\. Style: ink$/);
        const stored = await sharp(`${t.dataDir}/files/${row.storageKey}`).metadata();
        expect({ width: stored.width, height: stored.height }).toEqual({ width: row.width, height: row.height });
        expect(row.width).toBeGreaterThan(row.height); // 3:2 is landscape with every vendor
      }
    } finally {
      await t.close();
      await fake.close();
    }
  });
});
