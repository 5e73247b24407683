import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnService, type ServiceProcess } from '../support/service-process.ts';
import { browserAvailable, launchBrowser, watchProblems } from './support.ts';

/**
 * The pages against the service as `npm start` runs it on the embedded defaults: its own
 * process, its own embedded PostgreSQL in a fresh DATA_DIR, the local renderer, no settings.
 */
describe.skipIf(!browserAvailable())('the web app against the real service on its embedded defaults', () => {
  let dataDir: string;
  let service: ServiceProcess;
  let browser: Browser;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'sceneworks-web-'));
    service = await spawnService({ DATA_DIR: dataDir }, 90_000);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    if (service) {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('makes a storyboard through the form and shows it in the gallery', async () => {
    const page = await (await browser.newContext()).newPage();
    const problems = watchProblems(page);
    await page.goto(`${service.baseUrl}/`);
    await expect.poll(() => page.locator('.list [role="status"]').textContent()).toBe('No projects yet: start one with the form.');
    await page.getByLabel('Title').fill('First board');
    await page.getByLabel('Scenes').fill('A red door\nA blue window');
    await page.getByLabel('Images per scene').fill('2');
    await page.getByLabel('Aspect ratio').selectOption('9:16');
    await page.getByRole('button', { name: 'Start generating' }).click();
    await page.waitForURL(/\/p\/[0-9a-f-]+$/);
    await expect.poll(() => page.locator('.slot[data-status="succeeded"] img').count(), { timeout: 60_000 }).toBe(4);
    await page.waitForFunction(() => [...document.querySelectorAll('.slot img')].every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalHeight === 1344 && (i as HTMLImageElement).naturalWidth === 768));
    await page.getByRole('link', { name: 'Gallery' }).click();
    await expect.poll(() => page.locator('.gallery-item').count()).toBe(4);
    await page.getByRole('link', { name: 'Projects' }).click();
    await expect.poll(() => page.locator('.project a').textContent()).toBe('First board');
    expect(await page.locator('.project .badge').textContent()).toBe('completed');
    expect(problems).toEqual([]);
  });
});
