import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.ts';
import { DEFAULT_PRICES, loadPrices, priceList } from '../../src/generation/prices.ts';

const image = (provider: string, model: string | null, width = 1024, height = 1024) => ({ provider, model, width, height });

describe('image prices', () => {
  const price = priceList(DEFAULT_PRICES);

  it('prices what the defaults know, by model and size, and nothing else (null, never a guess)', () => {
    expect(price(image('local', null))).toBe(0);
    expect(price(image('openai', 'dall-e-3'))).toBe(0.04);
    expect(price(image('openai', 'dall-e-3', 1792, 1024))).toBe(0.08);
    expect(price(image('openai', 'dall-e-3', 1536, 1024))).toBeNull(); // a size dall-e-3 has no price for
    expect(price(image('openai', 'gpt-image-1'))).toBeNull(); // priced by a quality the answer does not tell
    expect(price(image('gemini', 'gemini-2.5-flash-image', 1344, 768))).toBe(0.039);
    expect(price(image('replicate', 'black-forest-labs/flux-schnell:5599ed30'))).toBe(0.003);
    expect(price(image('replicate', 'black-forest-labs/flux-dev'))).toBeNull();
    expect(price(image('stability', 'ultra'))).toBe(0.08);
    expect(price(image('nobody', null))).toBeNull();
  });

  it('prefers the most specific entry: exact model over a prefix, exact size over any', () => {
    const p = priceList([
      { provider: 'x', model: 'm*', size: '*', usd: 1 },
      { provider: 'x', model: 'm1', size: '*', usd: 2 },
      { provider: 'x', model: 'm1', size: '10x10', usd: 3 },
    ]);
    expect(p(image('x', 'm2', 10, 10))).toBe(1);
    expect(p(image('x', 'm1', 20, 20))).toBe(2);
    expect(p(image('x', 'm1', 10, 10))).toBe(3);
  });

  it('PRICES_FILE entries win whenever they match; the defaults fill in the rest; a bad file says what is wrong', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sceneworks-prices-'));
    const file = path.join(dir, 'prices.json');
    await writeFile(file, JSON.stringify([{ provider: 'openai', model: 'gpt-image-1', usd: 0.042 }, { provider: 'openai', model: 'dall-e-3', usd: 0.05 }]));
    const p = loadPrices(file);
    expect(p(image('openai', 'gpt-image-1'))).toBe(0.042);
    expect(p(image('openai', 'dall-e-3'))).toBe(0.05); // over the default's exact size
    expect(p(image('gemini', 'gemini-2.5-flash-image'))).toBe(0.039);

    await writeFile(file, JSON.stringify([{ provider: 'openai', model: 'x', usd: -1 }]));
    expect(() => loadPrices(file)).toThrow(ConfigError);
    expect(() => loadPrices(file)).toThrow(/PRICES_FILE: .*prices\.json must be a list of \{provider, model, size, usd\}: at 0\.usd/);
    await writeFile(file, '{not json');
    expect(() => loadPrices(file)).toThrow(/PRICES_FILE: .* cannot be read as JSON/);
    await writeFile(file, JSON.stringify([{ provider: 'openai', model: 'x', usd: 1, currency: 'EUR' }]));
    expect(() => loadPrices(file)).toThrow(/PRICES_FILE/);
  });
});
