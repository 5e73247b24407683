import { lookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, fetch as undiciFetch } from 'undici';

/**
 * Which addresses a fetch of a URL the service did not choose may connect to: a legacy row's
 * image URL (downloads, the archive, the rehost backfill). A stored URL must never make the
 * service reach its own network (the database, a cloud's metadata service at 169.254.169.254,
 * an admin port on loopback): by default only public unicast addresses are allowed.
 */
export type AddressPolicy = (address: string) => boolean;

/** Public unicast only: no loopback, private, link-local, unique-local, CGNAT, multicast, reserved or unspecified address (IPv4-mapped IPv6 judged as IPv4). */
export const publicAddressesOnly: AddressPolicy = (address) => {
  if (!ipaddr.isValid(address)) return false;
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  return ip.range() === 'unicast';
};

/** Any address (LEGACY_FETCH_ALLOW_PRIVATE=true: legacy images on a private network; tests on loopback). */
export const anyAddress: AddressPolicy = () => true;

/** The URL's host is, or resolves to, an address the policy refuses. */
export class RefusedAddressError extends Error {
  readonly code = 'REFUSED_ADDRESS';
  constructor(host: string, address: string) {
    super(`${host} is ${address === host ? 'an address' : `at ${address}, an address`} this service does not fetch from (not a public one)`);
    this.name = 'RefusedAddressError';
  }
}

/** The refusal behind a failed fetch: thrown as is (an address in the URL) or as the cause of fetch's own TypeError (at connection). */
export function refusalIn(err: unknown): RefusedAddressError | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof RefusedAddressError) return e;
  }
  return undefined;
}

export interface OutboundInit {
  signal?: AbortSignal | undefined;
  headers?: Record<string, string> | undefined;
  /** GET unless said; any other method's redirect is returned as the answer, never followed. */
  method?: string | undefined;
  body?: string | undefined;
}

/** fetch(), but every connection (the first and each redirect's) goes only to addresses the policy allows. */
export type OutboundFetch = (url: URL | string, init?: OutboundInit) => Promise<Response>;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/**
 * A fetch for URLs the service did not choose. Each host name is resolved and checked at
 * connection time, by the connection itself (the agent's lookup): the address checked is the
 * address connected to, so a name cannot resolve to a public address for a check and to a
 * private one for the connection. A host that resolves to several addresses is refused if any
 * one is refused. An address written in the URL (no lookup happens) is checked before the
 * request. Redirects are followed here, up to 5, each hop checked the same way; only to http(s).
 */
export function createOutboundFetch(policy: AddressPolicy): OutboundFetch {
  const agent = new Agent({
    connect: {
      lookup: ((hostname: string, options: LookupOptions, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void) => {
        lookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
          if (err) return callback(err, []);
          const refused = addresses.find((a) => !policy(a.address));
          if (refused) return callback(new RefusedAddressError(hostname, refused.address), []);
          if (options.all) return callback(null, addresses);
          return callback(null, addresses[0]!.address, addresses[0]!.family);
        });
      }) as unknown as LookupFunction,
    },
  });
  return async (url, init = {}) => {
    let current = new URL(url);
    for (let hop = 0; ; hop++) {
      if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new TypeError(`only http and https URLs are fetched, not ${current.protocol}`);
      const literal = current.hostname.replace(/^\[(.*)\]$/, '$1');
      if (ipaddr.isValid(literal) && !policy(literal)) throw new RefusedAddressError(literal, literal);
      const res = (await undiciFetch(current, { method: init.method, body: init.body, signal: init.signal, headers: init.headers, redirect: 'manual', dispatcher: agent })) as unknown as Response;
      const location = res.headers.get('location');
      if (!REDIRECTS.has(res.status) || location === null || (init.method ?? 'GET') !== 'GET') return res;
      await res.body?.cancel().catch(() => {});
      if (hop >= MAX_REDIRECTS) throw new TypeError(`more than ${MAX_REDIRECTS} redirects`);
      current = new URL(location, current);
    }
  };
}
