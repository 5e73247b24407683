import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../config.ts';

/**
 * What an image costs, in US dollars, by provider, model and size. An image whose price is not
 * in the table has no cost (`costUsd: null`): never a guess.
 *
 * `size` is the image's real width x height ('1024x1024'), or '*' for any size. A model may end
 * in '*' to cover its versions ('black-forest-labs/flux-schnell*' matches a pinned
 * 'black-forest-labs/flux-schnell:<version>'). The most specific entry wins: exact model over a
 * prefix, exact size over '*'. An entry of PRICES_FILE that matches wins over every default.
 */
export const PriceEntry = z.strictObject({
  provider: z.string().min(1),
  model: z.string().min(1).nullable(),
  size: z.string().regex(/^(\d+x\d+|\*)$/, "'<width>x<height>' or '*'").default('*'),
  usd: z.number().min(0).max(1000),
});
export type PriceEntry = z.output<typeof PriceEntry>;
export const PriceTable = z.array(PriceEntry);

/**
 * List prices for one image at the models' default settings, as the vendors published them
 * (pricing pages, checked 2025-08): what sceneworks asks for is what these assume. gpt-image-1
 * is left out on purpose: its price depends on the quality the API picks ('auto'), which the
 * answer does not say, so it is unknown (null) unless PRICES_FILE says otherwise.
 */
export const DEFAULT_PRICES: readonly PriceEntry[] = [
  { provider: 'local', model: null, size: '*', usd: 0 },
  // OpenAI, standard quality.
  { provider: 'openai', model: 'dall-e-3', size: '1024x1024', usd: 0.04 },
  { provider: 'openai', model: 'dall-e-3', size: '1792x1024', usd: 0.08 },
  { provider: 'openai', model: 'dall-e-3', size: '1024x1792', usd: 0.08 },
  { provider: 'openai', model: 'dall-e-2', size: '1024x1024', usd: 0.02 },
  { provider: 'openai', model: 'dall-e-2', size: '512x512', usd: 0.018 },
  { provider: 'openai', model: 'dall-e-2', size: '256x256', usd: 0.016 },
  // Gemini: 1,290 output tokens per image at $30 per million.
  { provider: 'gemini', model: 'gemini-2.5-flash-image', size: '*', usd: 0.039 },
  // Replicate: per output image.
  { provider: 'replicate', model: 'black-forest-labs/flux-schnell*', size: '*', usd: 0.003 },
  // Stability: credits at $0.01.
  { provider: 'stability', model: 'core', size: '*', usd: 0.03 },
  { provider: 'stability', model: 'ultra', size: '*', usd: 0.08 },
  { provider: 'stability', model: 'sd3.5-large', size: '*', usd: 0.065 },
  { provider: 'stability', model: 'sd3.5-large-turbo', size: '*', usd: 0.04 },
  { provider: 'stability', model: 'sd3.5-medium', size: '*', usd: 0.035 },
];

export type PriceOf = (image: { provider: string; model: string | null; width: number; height: number }) => number | null;

function modelMatches(pattern: string | null, model: string | null): number {
  if (pattern === null || model === null) return pattern === model ? 2 : 0;
  if (pattern === model) return 2;
  return pattern.endsWith('*') && model.startsWith(pattern.slice(0, -1)) ? 1 : 0;
}

/** The price of one image from `table` (first the more specific entries, then the earlier ones). */
export function priceList(table: readonly PriceEntry[]): PriceOf {
  return ({ provider, model, width, height }) => {
    const size = `${width}x${height}`;
    let best: { score: number; usd: number } | undefined;
    for (const entry of table) {
      if (entry.provider !== provider) continue;
      const m = modelMatches(entry.model, model);
      if (m === 0 || (entry.size !== '*' && entry.size !== size)) continue;
      const score = m * 2 + (entry.size === '*' ? 0 : 1);
      if (!best || score > best.score) best = { score, usd: entry.usd };
    }
    return best?.usd ?? null;
  };
}

/** PRICES_FILE (a JSON array of entries), then the defaults; a bad file is a start-up error naming it. */
export function loadPrices(file: string | undefined): PriceOf {
  if (!file) return priceList(DEFAULT_PRICES);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError([`PRICES_FILE: ${file} cannot be read as JSON: ${(err as Error).message}`]);
  }
  const result = PriceTable.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError([`PRICES_FILE: ${file} must be a list of {provider, model, size, usd}: at ${issue?.path.join('.') || 'the top'}: ${issue?.message ?? 'invalid'}`]);
  }
  const own = priceList(result.data);
  const defaults = priceList(DEFAULT_PRICES);
  // The operator's entries decide whenever one matches; the defaults fill in the rest.
  return (image) => own(image) ?? defaults(image);
}
