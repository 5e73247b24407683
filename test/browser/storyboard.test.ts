import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalProvider } from '../../src/providers/local.ts';
import { ProviderError, type ImageProvider } from '../../src/providers/provider.ts';
import { browserAvailable, launchBrowser, naturalSizes, screenshot, startWebService, watchProblems, type WebService } from './support.ts';

/**
 * The local renderer, slowed down so the page shows slots queued and running, failing (for
 * good, not retried) the first time a prompt containing "fail once" is drawn.
 */
let release: () => void = () => {};
const held = new Promise<void>((resolve) => (release = resolve));

/** Also holds every prompt containing "wait for me" until the test calls release(). */
function scriptedProvider(): ImageProvider {
  const local = createLocalProvider({ delayMs: 150 });
  const failed = new Set<string>();
  return {
    name: 'local',
    defaultModel: null,
    async generate(request) {
      if (request.prompt.includes('wait for me')) await held;
      if (request.prompt.includes('fail once') && !failed.has(request.prompt)) {
        failed.add(request.prompt);
        throw new ProviderError('local', 'the model refused this prompt (test)', { transient: false, code: 'invalid_request' as never });
      }
      return local.generate(request);
    },
  };
}

describe.skipIf(!browserAvailable())('storyboard in a real browser', () => {
  let web: WebService;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    web = await startWebService({}, new Map([['local', scriptedProvider()]]));
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  async function openPage(path: string, viewport = { width: 1280, height: 900 }) {
    const context = await browser.newContext({ viewport });
    page = await context.newPage();
    problems = watchProblems(page);
    await page.goto(web.url + path);
    return page;
  }

  it('creates a project through the form and watches every slot fill in', async () => {
    await openPage('/');
    await page.getByLabel('Title').fill('Lighthouse story');
    await page.getByLabel('Scenes').fill('A lighthouse at dusk\nA boat in the storm\nA harbor at dawn');
    await page.getByLabel('Images per scene').fill('2');
    await page.getByLabel('Aspect ratio').selectOption('16:9');
    await page.getByRole('button', { name: 'Start generating' }).click();
    await page.waitForURL(/\/p\/[0-9a-f-]+$/);
    await expect.poll(() => page.locator('.slot[data-status="succeeded"] img').count(), { timeout: 30_000 }).toBe(6);
    await page.waitForFunction(() => [...document.querySelectorAll('.slot img')].every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0));
    const sizes = await naturalSizes(page, '.slot img');
    expect(sizes).toHaveLength(6);
    for (const s of sizes) expect([s.width, s.height]).toEqual([1344, 768]);
    expect(await page.locator('.scene').count()).toBe(3);
    expect(await page.locator('.scene h2').allTextContents()).toEqual(['Scene 1', 'Scene 2', 'Scene 3']);
    expect(await page.locator('.slot img').first().getAttribute('alt')).toBe('A lighthouse at dusk');
    await expect.poll(() => page.locator('.board-title .badge').textContent()).toBe('completed');
    expect(await page.getByRole('progressbar', { name: 'Project progress' }).getAttribute('aria-valuenow')).toBe('6');
    await screenshot(page, 'storyboard');
    await page.getByRole('link', { name: 'Projects' }).click();
    await expect.poll(() => page.locator('.project a').first().textContent()).toBe('Lighthouse story');
    await screenshot(page, 'projects', { fullPage: false });
    expect(problems).toEqual([]);
  });

  /** A project made through the API, finished, and its page open. */
  async function finishedProject(scenes: string[], imagesPerScene = 1): Promise<string> {
    const created = await web.call('POST', '/projects', { title: 'Made by the API', scenes: scenes.map((prompt) => ({ prompt })), imagesPerScene, aspectRatio: '1:1' });
    expect(created.status).toBe(202);
    await web.waitForProject(created.body.id);
    await openPage(`/p/${created.body.id}`);
    await expect.poll(() => page.locator('.slot[data-status="succeeded"] img').count()).toBe(scenes.length * imagesPerScene);
    return created.body.id;
  }

  const srcs = (scene: number) => page.locator(`.scene[data-scene-index="${scene}"] .slot img`).evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).src));

  it('regenerates one scene with an edited prompt: only that scene changes; then restores the earlier version', async () => {
    const id = await finishedProject(['A quiet forest', 'A red kite over hills', 'A stone bridge']);
    const before = { 1: await srcs(1), 2: await srcs(2), 3: await srcs(3) };
    const scene2 = page.locator('.scene[data-scene-index="2"]');
    await scene2.getByLabel('Prompt').fill('A yellow kite over the sea');
    await scene2.getByRole('button', { name: 'Regenerate scene' }).click();
    await expect.poll(async () => (await srcs(2))[0], { timeout: 30_000 }).not.toBe(before[2][0]);
    await expect.poll(() => scene2.locator('.slot').getAttribute('data-status')).toBe('succeeded');
    expect(await scene2.locator('.slot img').getAttribute('alt')).toBe('A yellow kite over the sea');
    expect(await srcs(1)).toEqual(before[1]);
    expect(await srcs(3)).toEqual(before[3]);
    const stored = await web.call('GET', `/projects/${id}`);
    expect(stored.body.generatedOutput.scenes[1].prompt).toBe('A yellow kite over the sea');

    // The replaced image is a version: restore it, and the slot shows it again.
    await scene2.getByRole('button', { name: 'Versions' }).click();
    const dialog = page.getByRole('dialog', { name: 'Versions' });
    await expect.poll(() => dialog.locator('.version').count()).toBe(2);
    await dialog.locator('.version:not(:has(.badge))').getByRole('button', { name: 'Restore' }).click();
    await expect.poll(async () => (await srcs(2))[0]).toBe(before[2][0]);
    await expect.poll(() => dialog.isVisible()).toBe(false);
    expect(await scene2.locator('.badge.stale').textContent()).toBe('1 from an older prompt');
    await page.waitForFunction(() => [...document.querySelectorAll('.slot img')].every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth === 1024));
    expect(problems).toEqual([]);
  });

  it('shows a failed slot with its error and a retry button that makes it', async () => {
    await web.call('POST', '/projects', { scenes: [{ prompt: 'A castle' }, { prompt: 'A dragon, fail once please' }], aspectRatio: '1:1' }).then(async (r) => {
      await web.waitForProject(r.body.id);
      await openPage(`/p/${r.body.id}`);
    });
    const failed = page.locator('.scene[data-scene-index="2"] .slot');
    await expect.poll(() => failed.getAttribute('data-status')).toBe('failed');
    expect(await failed.getByRole('alert').textContent()).toContain('the model refused this prompt');
    expect(await page.locator('.board-title .badge').textContent()).toBe('partial');
    await failed.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(() => failed.getAttribute('data-status'), { timeout: 30_000 }).toBe('succeeded');
    await page.waitForFunction(() => {
      const img = document.querySelector('.scene[data-scene-index="2"] .slot img') as HTMLImageElement | null;
      return img !== null && img.complete && img.naturalWidth === 1024;
    });
    await expect.poll(() => page.locator('.board-title .badge').textContent()).toBe('completed');
    expect(problems).toEqual([]);
  });

  it('favorites, downloads one image and the whole project, deletes an image, then deletes the project', async () => {
    const id = await finishedProject(['A windmill', 'A tulip field'], 2);
    page.on('dialog', (d) => void d.accept());
    const slot = page.locator('.scene[data-scene-index="1"] .slot').first();
    const imageId = (await slot.getAttribute('data-image-id'))!;
    await slot.getByRole('button', { name: /favorite/ }).click();
    await expect.poll(() => slot.getByRole('button', { name: /favorite/ }).getAttribute('aria-pressed')).toBe('true');
    expect((await web.call('GET', `/images/${imageId}`)).body.favorite).toBe(true);

    const [one] = await Promise.all([page.waitForEvent('download'), slot.getByRole('button', { name: 'Download' }).click()]);
    expect(one.suggestedFilename()).toMatch(/\.png$/);
    const bytes = await import('node:fs/promises').then(async (fs) => fs.readFile((await one.path())!));
    expect([...bytes.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    const [all] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download all (ZIP)' }).click()]);
    expect(all.suggestedFilename()).toMatch(/\.zip$/);
    const zip = await import('node:fs/promises').then(async (fs) => fs.readFile((await all.path())!));
    expect(zip.subarray(0, 2).toString()).toBe('PK');

    const doomed = page.locator('.scene[data-scene-index="2"] .slot').nth(1);
    await doomed.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => doomed.getAttribute('data-status')).toBe('empty');
    expect(await doomed.locator('img').count()).toBe(0);
    expect(await doomed.getByRole('button', { name: 'Generate' }).count()).toBe(1);
    expect((await web.call('GET', `/projects/${id}`)).body.generatedOutput.scenes[1].imageUrls[1]).toBeNull();

    await page.getByRole('button', { name: 'Delete project' }).click();
    await page.waitForURL(`${web.url}/`);
    expect((await web.call('GET', `/projects/${id}`)).status).toBe(404);
    expect(problems).toEqual([]);
  });

  it('keeps the project list up to date while a project generates, without a reload', async () => {
    const created = await web.call('POST', '/projects', { title: 'Held back', scenes: [{ prompt: 'A slow sunrise, wait for me' }], aspectRatio: '1:1' });
    await openPage('/');
    const item = page.locator(`.project[data-project-id="${created.body.id}"]`);
    await expect.poll(() => item.locator('.badge').textContent()).toMatch(/^(queued|running)$/);
    release();
    await expect.poll(() => item.locator('.badge').textContent(), { timeout: 20_000 }).toBe('completed');
    expect(await item.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('1');
    expect(problems).toEqual([]);
  });

  it('takes scenes pasted as JSON, keeps their extra fields and shows them; a bad paste is explained, not sent', async () => {
    await openPage('/');
    await page.getByLabel('Scenes').fill('[{"prompt": "A lantern", "narration": "It was dark"');
    await page.getByRole('button', { name: 'Start generating' }).click();
    await expect.poll(() => page.locator('.form-errors [role="alert"]').textContent()).toContain('The scenes are not valid JSON');
    await page.getByLabel('Scenes').fill(JSON.stringify([{ prompt: 'A lantern', narration: 'It was dark', mood: { calm: true } }, 'A moth']));
    await page.getByLabel('Provider').selectOption('local');
    await page.getByRole('button', { name: 'Start generating' }).click();
    await page.waitForURL(/\/p\/[0-9a-f-]+$/);
    const first = page.locator('.scene[data-scene-index="1"] .extras');
    await expect.poll(() => first.locator('dt').allTextContents()).toEqual(expect.arrayContaining(['narration', 'mood']));
    expect(await first.locator('dd').allTextContents()).toEqual(expect.arrayContaining(['It was dark', '{"calm":true}']));
    expect(await page.locator('.scene[data-scene-index="2"] .extras').count()).toBe(0);
    const id = page.url().split('/p/')[1]!;
    expect((await web.call('GET', `/projects/${id}`)).body.generatedOutput.scenes[0]).toMatchObject({ narration: 'It was dark', mood: { calm: true } });
    expect(problems).toEqual([]);
  });

  it('fits a phone-width screen, and says "not found" for a project that is not there and for an unknown page', async () => {
    const id = await finishedProject(['A tall lighthouse']);
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth)).toBe(true);
    const slot = await page.locator('.slot').boundingBox();
    expect(slot!.width).toBeLessThanOrEqual(390);
    expect(Math.abs(slot!.width - slot!.height)).toBeLessThan(2); // 1:1, reserved before the image loads

    await page.goto(`${web.url}/p/00000000-0000-4000-8000-000000000000`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Project not found');
    await page.goto(`${web.url}/p/${id}x`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Project not found');
    const missing = await page.goto(`${web.url}/no/such/page`);
    expect(missing!.status()).toBe(404);
    expect(await page.locator('h1').textContent()).toBe('Not found');
    expect(await page.locator('body').textContent()).not.toContain('"error"');
  });
});
