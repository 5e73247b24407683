import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserAvailable, launchBrowser, screenshot, startWebService, watchProblems, type WebService } from './support.ts';

describe.skipIf(!browserAvailable())('gallery in a real browser', () => {
  let web: WebService;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  const items = () => page.locator('.gallery-item');

  beforeAll(async () => {
    web = await startWebService();
    browser = await launchBrowser();
    // 40 images of foxes and 8 of whales: more than a page (30), so scrolling has to load the rest.
    const foxes = await web.call('POST', '/projects', { title: 'Foxes', scenes: Array.from({ length: 5 }, (_, i) => ({ prompt: `A red fox in the snow, take ${i + 1}` })), imagesPerScene: 8, aspectRatio: '4:3' });
    const whales = await web.call('POST', '/projects', { title: 'Whales', scenes: [{ prompt: 'A blue whale at sea' }], imagesPerScene: 8, aspectRatio: '16:9' });
    await web.waitForProject(foxes.body.id);
    await web.waitForProject(whales.body.id);
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  beforeAll(async () => {
    // Phone width: two columns, so a page of 30 is taller than the screen and the rest waits for a scroll.
    page = await (await browser.newContext({ viewport: { width: 390, height: 700 } })).newPage();
    problems = watchProblems(page);
    page.on('dialog', (d) => void d.accept());
  });

  it('shows every image newest first, loading more as the page scrolls', async () => {
    await page.goto(`${web.url}/gallery`);
    await expect.poll(() => items().count()).toBe(30);
    // Newest first, in the API's order.
    const firstPage = await web.call('GET', '/images?limit=30');
    expect(await items().evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.imageId))).toEqual(firstPage.body.items.map((i: { id: string }) => i.id));
    await page.locator('.sentinel').scrollIntoViewIfNeeded();
    await expect.poll(() => items().count()).toBe(48);
    await expect.poll(() => page.locator('.gallery-status').textContent()).toBe('48 images');
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth)).toBe(true);
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.evaluate(() => scrollTo(0, 0));
    await page.waitForFunction(() => [...document.querySelectorAll('.gallery-item img')].slice(0, 12).every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0));
    const shown = await items().evaluateAll((els) =>
      els.slice(0, 12).map((e) => ({ id: (e as HTMLElement).dataset.imageId, width: e.querySelector('img')!.naturalWidth, height: e.querySelector('img')!.naturalHeight })),
    );
    expect(shown).toEqual(firstPage.body.items.slice(0, 12).map((i: { id: string; width: number; height: number }) => ({ id: i.id, width: i.width, height: i.height })));
    await screenshot(page, 'gallery', { fullPage: false });
    await page.setViewportSize({ width: 390, height: 700 });
    expect(problems).toEqual([]);
  });

  it('favorites an image and filters to favorites', async () => {
    await page.goto(`${web.url}/gallery`);
    const first = items().first();
    const id = await first.getAttribute('data-image-id');
    await first.getByRole('button', { name: /favorite/ }).click();
    await expect.poll(() => items().first().getByRole('button', { name: /favorite/ }).getAttribute('aria-pressed')).toBe('true');
    expect((await web.call('GET', `/images/${id}`)).body.favorite).toBe(true);
    await page.getByLabel('Favorites only').check();
    await expect.poll(() => items().count()).toBe(1);
    expect(await items().first().getAttribute('data-image-id')).toBe(id);
    await page.getByLabel('Favorites only').uncheck();
    await expect.poll(() => items().count()).toBe(30);
  });

  it('searches as you type, opens the full record, and deletes an image', async () => {
    await page.goto(`${web.url}/gallery`);
    await page.getByRole('searchbox').pressSequentially('wha', { delay: 30 });
    await expect.poll(() => items().count()).toBe(8);
    expect(new Set(await items().locator('img').evaluateAll((imgs) => imgs.map((i) => i.getAttribute('alt'))))).toEqual(new Set(['A blue whale at sea']));

    // By keyboard: Tab reaches the first image from the last filter, Enter opens it, Escape closes it.
    await page.locator('#provider-filter').focus();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.className)).toBe('thumb');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Image' });
    await expect.poll(() => dialog.isVisible()).toBe(true);
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.isVisible()).toBe(false);

    await items().first().locator('.thumb').click();
    await expect.poll(() => dialog.isVisible()).toBe(true);
    const record = await dialog.locator('dl').textContent();
    expect(record).toContain('A blue whale at sea');
    expect(record).toContain('1344 × 768');
    expect(record).toMatch(/SHA-256[0-9a-f]{64}/);
    expect(await dialog.getByRole('link', { name: /Whales, scene 1/ }).getAttribute('href')).toMatch(/^\/p\/[0-9a-f-]+#scene-1$/);
    await dialog.getByRole('button', { name: 'Close' }).click();

    const doomed = await items().nth(2).getAttribute('data-image-id');
    await items().nth(2).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => items().count()).toBe(7);
    expect((await web.call('GET', `/images/${doomed}`)).status).toBe(404);
    await page.getByRole('searchbox').fill('');
    await expect.poll(() => items().count()).toBe(30);
    expect(problems).toEqual([]);
  });
});
