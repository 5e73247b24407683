import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export type Reply = 'ok' | 'hang' | number | { status: 429; retryAfterS: number };
export interface Received {
  id: string;
  type: string;
  data: any;
  at: number;
  /** The signature checked with the official package (standardwebhooks). */
  verified: boolean;
  headers: IncomingHttpHeaders;
}

/**
 * A webhook receiver on loopback: verifies every signature against `secret` with the official
 * package, answers as scripted (then 200), records every delivery.
 */
export async function startWebhookReceiver(secret: string) {
  const received: Received[] = [];
  const script: Reply[] = [];
  const verifier = new Webhook(secret);
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      let verified = true;
      try {
        verifier.verify(body, req.headers as Record<string, string>);
      } catch {
        verified = false;
      }
      const payload = JSON.parse(body) as { type: string; data: any };
      received.push({ id: String(req.headers['webhook-id']), type: payload.type, data: payload.data, at: Date.now(), verified, headers: req.headers });
      const reply = script.shift() ?? 'ok';
      if (reply === 'hang') return; // never answers
      if (reply === 'ok') return res.writeHead(200).end('ok');
      if (typeof reply === 'number') return res.writeHead(reply).end();
      res.writeHead(429, { 'retry-after': String(reply.retryAfterS) }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    received,
    script,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
