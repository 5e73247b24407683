import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer } from '../../src/http/server.ts';
import type { ImageProvider } from '../../src/providers/provider.ts';
import { startTestApp, type TestApp } from '../support/app.ts';

/** Debian's chromium (apt-get install -y chromium), or CHROMIUM_PATH. */
export function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => Boolean(p));
  return candidates.find((p) => existsSync(p));
}

/**
 * Whether the browser tests run here. Without a Chromium they are skipped with the reason
 * printed, except where REQUIRE_BROWSER=1 (.ci/run sets it, after installing Chromium): there a
 * missing browser fails the run instead of silently skipping it.
 */
export function browserAvailable(): boolean {
  if (findChromium()) return true;
  const reason = 'browser tests skipped: no Chromium found (apt-get install -y chromium, or set CHROMIUM_PATH)';
  if (process.env.REQUIRE_BROWSER === '1') throw new Error(`${reason}; REQUIRE_BROWSER=1 forbids skipping`);
  console.warn(reason);
  return false;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export interface WebService extends TestApp {
  url: string;
}

/** The real app (real PostgreSQL, local store) served over HTTP on loopback, for a browser. */
export async function startWebService(env: Record<string, string> = {}, providers?: ReadonlyMap<string, ImageProvider>): Promise<WebService> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t = await startTestApp({ PUBLIC_BASE_URL: url, HOST: '127.0.0.1', ...env }, providers ? { providers } : {});
  let server: Server;
  try {
    server = await startServer(t.app, { port, hostname: '127.0.0.1' });
  } catch (err) {
    await t.close();
    throw err;
  }
  return {
    ...t,
    url,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await t.close();
    },
  };
}

/**
 * Saves what the page shows for a person to look at, in test-results/browser/ (git-ignored):
 * lazy images are loaded first, so the picture is what a user sees after scrolling.
 */
export async function screenshot(page: Page, name: string, o: { fullPage?: boolean } = {}): Promise<string> {
  const dir = path.join(new URL('../..', import.meta.url).pathname, 'test-results', 'browser');
  await mkdir(dir, { recursive: true });
  await page.evaluate(() => document.querySelectorAll('img').forEach((i) => (i.loading = 'eager')));
  await page.waitForFunction(() => [...document.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth > 0));
  await page.evaluate(async () => {
    await Promise.all([...document.querySelectorAll('img')].map((i) => i.decode().catch(() => {})));
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  });
  // Software rasterizing (--disable-gpu) can lag the frame a little: only the picture waits on this.
  await page.waitForTimeout(500);
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: o.fullPage ?? true });
  return file;
}

/** Every <img> in `selector` has loaded, with its natural size. */
export async function naturalSizes(page: Page, selector: string): Promise<{ src: string; width: number; height: number; complete: boolean }[]> {
  return page.$$eval(selector, (imgs) => (imgs as HTMLImageElement[]).map((i) => ({ src: i.currentSrc || i.src, width: i.naturalWidth, height: i.naturalHeight, complete: i.complete })));
}

/** Console errors and failed requests of a page, so a test can assert there were none. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return problems;
}
