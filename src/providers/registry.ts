import type { Config } from '../config.ts';
import { createGeminiProvider } from './gemini.ts';
import { createLocalProvider } from './local.ts';
import { createOpenAIProvider } from './openai.ts';
import type { ImageProvider } from './provider.ts';
import { createReplicateProvider } from './replicate.ts';
import { createStabilityProvider } from './stability.ts';

/**
 * The providers this process can use: `local` always, each vendor only when its key is
 * configured. A project naming a provider outside this map is refused with a 400.
 */
export function createProviders(c: Config): Map<string, ImageProvider> {
  const providers = new Map<string, ImageProvider>();
  const add = (p: ImageProvider) => providers.set(p.name, p);
  add(createLocalProvider({ delayMs: c.LOCAL_PROVIDER_DELAY_MS }));
  if (c.OPENAI_API_KEY) {
    add(createOpenAIProvider({ apiKey: c.OPENAI_API_KEY, baseUrl: c.OPENAI_BASE_URL, model: c.OPENAI_MODEL, concurrency: c.OPENAI_CONCURRENCY }));
  }
  if (c.REPLICATE_API_TOKEN) {
    add(createReplicateProvider({ apiToken: c.REPLICATE_API_TOKEN, baseUrl: c.REPLICATE_BASE_URL, model: c.REPLICATE_MODEL, concurrency: c.REPLICATE_CONCURRENCY }));
  }
  if (c.GEMINI_API_KEY) {
    add(createGeminiProvider({ apiKey: c.GEMINI_API_KEY, baseUrl: c.GEMINI_BASE_URL, model: c.GEMINI_MODEL, concurrency: c.GEMINI_CONCURRENCY }));
  }
  if (c.STABILITY_API_KEY) {
    add(createStabilityProvider({ apiKey: c.STABILITY_API_KEY, baseUrl: c.STABILITY_BASE_URL, model: c.STABILITY_MODEL, concurrency: c.STABILITY_CONCURRENCY }));
  }
  return providers;
}
