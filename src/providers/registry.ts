import type { Config } from '../config.ts';
import { createLocalProvider } from './local.ts';
import type { ImageProvider } from './provider.ts';

/**
 * The providers this process can use: `local` always, each vendor only when its key is
 * configured. A project naming a provider outside this map is refused with a 400. A vendor's
 * module (and its SDK) is loaded only when it is configured: the OpenAI and Gemini SDKs alone
 * hold ~40 MiB of a process that does not use them.
 */
export async function createProviders(c: Config): Promise<Map<string, ImageProvider>> {
  const providers = new Map<string, ImageProvider>();
  const add = (p: ImageProvider) => providers.set(p.name, p);
  add(createLocalProvider({ delayMs: c.LOCAL_PROVIDER_DELAY_MS }));
  if (c.OPENAI_API_KEY) {
    const { createOpenAIProvider } = await import('./openai.ts');
    add(createOpenAIProvider({ apiKey: c.OPENAI_API_KEY, baseUrl: c.OPENAI_BASE_URL, model: c.OPENAI_MODEL, concurrency: c.OPENAI_CONCURRENCY }));
  }
  if (c.REPLICATE_API_TOKEN) {
    const { createReplicateProvider } = await import('./replicate.ts');
    add(createReplicateProvider({ apiToken: c.REPLICATE_API_TOKEN, baseUrl: c.REPLICATE_BASE_URL, model: c.REPLICATE_MODEL, concurrency: c.REPLICATE_CONCURRENCY }));
  }
  if (c.GEMINI_API_KEY) {
    const { createGeminiProvider } = await import('./gemini.ts');
    add(createGeminiProvider({ apiKey: c.GEMINI_API_KEY, baseUrl: c.GEMINI_BASE_URL, model: c.GEMINI_MODEL, concurrency: c.GEMINI_CONCURRENCY }));
  }
  if (c.STABILITY_API_KEY) {
    const { createStabilityProvider } = await import('./stability.ts');
    add(createStabilityProvider({ apiKey: c.STABILITY_API_KEY, baseUrl: c.STABILITY_BASE_URL, model: c.STABILITY_MODEL, concurrency: c.STABILITY_CONCURRENCY }));
  }
  return providers;
}
