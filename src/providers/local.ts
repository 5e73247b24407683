import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { probeImage } from './image-bytes.ts';
import type { GeneratedImage, GenerateRequest, ImageProvider } from './provider.ts';

const NAME = 'local';

export interface LocalProviderOptions {
  /** Artificial latency per image, for demos and benchmarks. */
  delayMs: number;
  /** What draws the image: renderPlaceholder unless given. */
  render?: ((request: GenerateRequest) => Promise<Uint8Array>) | undefined;
}

/**
 * A placeholder renderer for running without a paid API: a real PNG of the requested size,
 * a colour derived from prompt and seed, and the prompt written on it, so a person can see
 * which image belongs to which scene. Same prompt + seed + size: same bytes.
 * Like every adapter, it reports the type and size its bytes have (probeImage), not the
 * ones it was asked for: the row must describe the file, whatever drew it.
 */
export function createLocalProvider(options: LocalProviderOptions): ImageProvider {
  const render = options.render ?? renderPlaceholder;
  return {
    name: NAME,
    defaultModel: null,
    async generate(request: GenerateRequest): Promise<GeneratedImage> {
      if (options.delayMs > 0) await sleep(options.delayMs, undefined, { signal: request.signal });
      const bytes = await render(request);
      const { mimeType, width, height } = await probeImage(NAME, bytes);
      return { bytes, mimeType, width, height, seed: request.seed, model: null };
    },
  };
}

/** The placeholder PNG: renderSvg drawn by sharp. */
export function renderPlaceholder(request: Pick<GenerateRequest, 'fullPrompt' | 'seed' | 'width' | 'height'>): Promise<Uint8Array> {
  return sharp(Buffer.from(renderSvg(request))).png({ compressionLevel: 6 }).toBuffer();
}

export function renderSvg(request: Pick<GenerateRequest, 'fullPrompt' | 'seed' | 'width' | 'height'>): string {
  const { width, height, seed } = request;
  const hash = fnv1a(`${request.fullPrompt}\u0000${seed}`);
  const hue = hash % 360;
  const hue2 = (hue + 40 + ((hash >>> 9) % 80)) % 360;
  const fontSize = Math.round(Math.min(width, height) / 18);
  const charsPerLine = Math.max(12, Math.floor((width * 0.84) / (fontSize * 0.55)));
  const lines = wrap(request.fullPrompt, charsPerLine, 8);
  const lineHeight = Math.round(fontSize * 1.3);
  const top = Math.round(height / 2 - ((lines.length - 1) * lineHeight) / 2);
  const text = lines
    .map((line, i) => `<text x="50%" y="${top + i * lineHeight}" text-anchor="middle">${escapeXml(line)}</text>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="hsl(${hue},55%,38%)"/><stop offset="1" stop-color="hsl(${hue2},60%,22%)"/>
</linearGradient></defs>
<rect width="100%" height="100%" fill="url(#g)"/>
<g font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" fill="#fff">${text}</g>
<text x="${width - 16}" y="${height - 16}" text-anchor="end" font-family="DejaVu Sans Mono, monospace" font-size="${Math.round(fontSize / 2)}" fill="#ffffffaa">sceneworks local · seed ${seed} · ${width}×${height}</text>
</svg>`;
}

function wrap(text: string, width: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const pieces = word.length > width ? (word.match(new RegExp(`.{1,${width}}`, 'gu')) ?? [word]) : [word];
    for (const piece of pieces) {
      if (line === '') line = piece;
      else if (line.length + 1 + piece.length <= width) line += ` ${piece}`;
      else {
        lines.push(line);
        line = piece;
      }
    }
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    const kept = lines.slice(0, maxLines);
    kept[maxLines - 1] = `${kept[maxLines - 1]!.slice(0, Math.max(0, width - 1))}…`;
    return kept;
  }
  return lines;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
