import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Context } from 'hono';
import { Hono } from 'hono';
import { html } from 'hono/html';
import type { AppEnv } from '../http/env.ts';

/**
 * The web app: three pages (projects, storyboard, gallery) that are one HTML shell each, and
 * the plain browser JavaScript and CSS under web/ that fill them in through the public API.
 * No build step, nothing from another origin. The shells hold no user data, so they and the
 * assets are public under AUTH=jwt; everything the scripts show comes from the API with the
 * user's bearer token.
 */

const WEB_DIR = new URL('../../web/', import.meta.url);

/** Every file the pages may load, by name: nothing else under web/ (or outside it) is served. */
const ASSETS: Readonly<Record<string, string>> = {
  'app.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'ui.js': 'text/javascript; charset=utf-8',
  'projects.js': 'text/javascript; charset=utf-8',
  'storyboard.js': 'text/javascript; charset=utf-8',
  'gallery.js': 'text/javascript; charset=utf-8',
};

interface Asset {
  bytes: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSETS)) {
    const bytes = readFileSync(new URL(name, WEB_DIR));
    assets.set(name, { bytes: new Uint8Array(bytes), type, etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

export type PageName = 'projects' | 'storyboard' | 'gallery' | 'error';

export interface PageSettings {
  auth: 'none' | 'jwt';
  providers: readonly string[];
  defaultProvider: string;
}

/** Paths of the pages and their assets: answered without a token (they hold no data). */
export function isPagePath(path: string): boolean {
  return path === '/' || path === '/gallery' || /^\/p\/[^/]+$/.test(path) || path.startsWith('/assets/');
}

/**
 * A browser opening a URL (a navigation), as opposed to a script calling the API: errors for it
 * are a page a person can read, never raw JSON.
 */
export function isNavigation(c: Context): boolean {
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') return false;
  const mode = c.req.header('sec-fetch-mode');
  if (mode !== undefined) return mode === 'navigate';
  return /^\s*text\/html\b/i.test(c.req.header('accept') ?? '');
}

export function shell(page: PageName, settings: PageSettings, extra: { title?: string; status?: number; message?: string } = {}) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${extra.title ?? 'sceneworks'}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body data-page="${page}" data-auth="${settings.auth}" data-providers="${settings.providers.join(',')}" data-default-provider="${settings.defaultProvider}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">sceneworks</a>
<nav aria-label="Main"><a href="/">Projects</a><a href="/gallery">Gallery</a></nav>
<div id="session" class="session"></div>
</header>
<main id="main" tabindex="-1">${
    page === 'error'
      ? html`<section class="notice"><h1>${extra.status === 404 ? 'Not found' : extra.status === 401 ? 'Sign in required' : 'Something went wrong'}</h1><p>${extra.message ?? ''}</p><p><a href="/">Back to your projects</a></p></section>`
      : html`<p class="muted" role="status">Loading…</p>`
  }</main>
<noscript><p class="notice">This page needs JavaScript.</p></noscript>
</body>
</html>`;
}

export function webRoutes(settings: PageSettings) {
  const app = new Hono<AppEnv>();
  const assets = loadAssets();
  const page = (name: PageName) => (c: Context<AppEnv>) => c.html(shell(name, settings));

  app.get('/', page('projects'));
  app.get('/gallery', page('gallery'));
  app.get('/p/:id', page('storyboard'));
  app.get('/assets/:name', (c) => {
    const asset = assets.get(c.req.param('name'));
    if (!asset) return c.notFound();
    const headers = { 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304, headers);
    return c.body(asset.bytes, 200, headers);
  });
  return app;
}

/** The page for an error answered to a navigation (see isNavigation). */
export function errorPage(c: Context, settings: PageSettings, status: number, message: string): Response | Promise<Response> {
  return c.html(shell('error', settings, { title: status === 404 ? 'Not found · sceneworks' : 'Error · sceneworks', status, message }), status as 404);
}
