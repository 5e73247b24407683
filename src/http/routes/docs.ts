import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Scalar } from '@scalar/hono-api-reference';
import { Hono } from 'hono';
import type { AppEnv } from '../env.ts';
import { cspNonce } from '../security.ts';

const gzipAsync = promisify(gzip);

/** Whether an Accept-Encoding header takes gzip (named or `*`, and not refused with q=0). */
function acceptsGzip(header: string): boolean {
  return header.split(',').some((part) => {
    const [name, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return (name === 'gzip' || name === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

interface Bundle {
  version: string;
  file: URL;
}

/**
 * The API reference's browser bundle (the single-file build, `window.Scalar`) as the package
 * @scalar/api-reference ships it. Its package exports only its ES modules, so the file is found
 * beside the resolved entry (dist/index.js).
 */
function scalarBundle(): Bundle {
  const entry = import.meta.resolve('@scalar/api-reference');
  const { version } = JSON.parse(readFileSync(new URL('../package.json', entry), 'utf8')) as { version: string };
  return { version, file: new URL('./browser/standalone.js', entry) };
}

/**
 * GET /docs (the API reference of /openapi.json) and the script it runs, both from this
 * service: the page loads nothing from another origin, so it works offline and air-gapped.
 */
export function docsRoutes(bundle: Bundle = scalarBundle()) {
  const app = new Hono<AppEnv>();
  // The version is in the path, so the script can be cached for good and a new version is a new URL.
  const scriptPath = `/docs/scalar-${bundle.version}.js`;
  let plain: Promise<Buffer> | undefined;
  let gzipped: Promise<Buffer> | undefined;
  // Read and compressed once, on first use (4 MB, 1 MB gzipped): most processes never serve it.
  const plainBytes = () => (plain ??= readFile(bundle.file));
  const gzippedBytes = () => (gzipped ??= plainBytes().then((bytes) => gzipAsync(bytes, { level: 9 })));

  app.get(scriptPath, async (c) => {
    const useGzip = acceptsGzip(c.req.header('accept-encoding') ?? '');
    const bytes = useGzip ? await gzippedBytes() : await plainBytes();
    c.header('content-type', 'text/javascript; charset=utf-8');
    c.header('cache-control', 'public, max-age=31536000, immutable');
    c.header('vary', 'accept-encoding');
    if (useGzip) c.header('content-encoding', 'gzip');
    return c.body(new Uint8Array(bytes));
  });

  // Options of this bundle that the middleware's (older) configuration type does not list yet.
  const bundleOnly = {
    // The agent chat talks to Scalar's servers; it turns itself on when the page is on localhost.
    agent: { disabled: true },
  };
  app.get(
    '/docs',
    Scalar((c) => ({
      url: '/openapi.json',
      pageTitle: 'sceneworks API',
      // `cdn` is where the page loads the single-file bundle from: here, this service.
      cdn: scriptPath,
      // The default fonts come from Scalar's font server; the system fonts need no request.
      withDefaultFonts: false,
      // The page's scripts carry the nonce its Content-Security-Policy allows (see securityHeaders).
      nonce: cspNonce(c),
      ...bundleOnly,
    })),
  );
  return app;
}
