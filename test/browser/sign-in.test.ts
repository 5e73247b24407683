import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHs256, supabaseUserClaims } from '../fakes/jwks.ts';
import { browserAvailable, launchBrowser, startWebService, watchProblems, type WebService } from './support.ts';

const SECRET = 'browser-test-secret-long-enough-for-hs256';

describe.skipIf(!browserAvailable())('signing in under AUTH=jwt, in a real browser', () => {
  let web: WebService;
  let browser: Browser;
  const alice = randomUUID();
  const bob = randomUUID();
  let bobsProject: string;
  let alicesProject: string;

  beforeAll(async () => {
    web = await startWebService({ AUTH: 'jwt', JWT_SECRET: SECRET });
    browser = await launchBrowser();
    const as = async (sub: string) => ({ authorization: `Bearer ${await signHs256(SECRET, supabaseUserClaims({ sub, email: `${sub.slice(0, 4)}@example.test` }))}` });
    bobsProject = (await web.call('POST', '/projects', { title: 'Bob’s secret board', scenes: [{ prompt: 'Bob only' }] }, await as(bob))).body.id;
    alicesProject = (await web.call('POST', '/projects', { title: 'Alice’s board', scenes: [{ prompt: 'Alice only' }] }, await as(alice))).body.id;
    await web.waitForProject(alicesProject).catch(() => {}); // polls without a token: just gives the runner time
  });
  afterAll(async () => {
    await browser?.close();
    await web?.close();
  });

  it('takes the token a Supabase redirect leaves in the URL, shows only the user’s projects, and calls another user’s project not found', async () => {
    const page = await (await browser.newContext()).newPage();
    const problems = watchProblems(page);
    const token = await signHs256(SECRET, supabaseUserClaims({ sub: alice, email: 'alice@example.test' }));
    await page.goto(`${web.url}/#access_token=${token}&token_type=bearer&expires_in=3600`);
    await expect.poll(() => page.locator('.project').count()).toBe(1);
    expect(await page.locator('.project a').textContent()).toBe('Alice’s board');
    expect(page.url()).toBe(`${web.url}/`); // the token left the address bar
    expect(await page.locator('#session').textContent()).toContain('alice@example.test');
    expect(await page.evaluate(() => sessionStorage.getItem('sceneworks.accessToken'))).toBe(token);

    expect(problems).toEqual([]);

    await page.goto(`${web.url}/p/${bobsProject}`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Project not found');
    expect(await page.locator('body').textContent()).not.toContain('Bob');
    // The browser logs the API's 404 itself; nothing else went wrong.
    expect(problems).toEqual(['console: Failed to load resource: the server responded with a status of 404 (Not Found)']);
    problems.length = 0;

    await page.goto(`${web.url}/p/${alicesProject}`);
    await expect.poll(() => page.locator('.slot[data-status="succeeded"] img').count(), { timeout: 30_000 }).toBe(1);
    expect(problems).toEqual([]);
  });

  it('asks for a token when there is none, takes a pasted one, and says plainly when it has expired', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${web.url}/gallery`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in');
    await page.getByLabel('Access token').fill(await signHs256(SECRET, supabaseUserClaims({ sub: alice })));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('h1').textContent()).toBe('Gallery');
    await expect.poll(() => page.locator('.gallery-item').count(), { timeout: 30_000 }).toBe(1);

    const expired = await signHs256(SECRET, supabaseUserClaims({ sub: alice, exp: Math.floor(Date.now() / 1000) - 60 }));
    await page.evaluate((t) => sessionStorage.setItem('sceneworks.accessToken', t), expired);
    await page.goto(`${web.url}/`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in');
    expect(await page.getByRole('alert').textContent()).toBe('Your sign-in has expired. Sign in again to continue.');
  });
});
