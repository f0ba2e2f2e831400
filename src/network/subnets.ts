// Choosing a subnet for a network that was not given one: the first candidate that overlaps neither a host route nor
// another Silo network. The default route (0.0.0.0/0) is ignored, or nothing would ever fit.

import { run } from '../common/exec.js';
import { noCapacity } from '../common/errors.js';
import { formatCidr, overlaps, parseCidr, type Cidr } from './ipv4.js';

/** 10.88.0.0/16 … 10.127.0.0/16, then 172.17.0.0/16 … 172.31.0.0/16. */
export function defaultCandidates(): string[] {
  const out: string[] = [];
  for (let b = 88; b <= 127; b++) out.push(`10.${b}.0.0/16`);
  for (let b = 17; b <= 31; b++) out.push(`172.${b}.0.0/16`);
  return out;
}

export function chooseSubnet(candidates: string[], routes: string[], taken: string[]): string {
  const busy: Cidr[] = [];
  for (const r of [...routes, ...taken]) {
    try {
      const c = parseCidr(r, true);
      if (c.len > 0) busy.push(c);
    } catch {
      // Non-IPv4 destinations (e.g. multicast keywords) cannot collide with an IPv4 /16.
    }
  }
  for (const cand of candidates) {
    const c = parseCidr(cand);
    if (!busy.some((b) => overlaps(b, c))) return formatCidr(c);
  }
  throw noCapacity('no free subnet left for a new network; give one explicitly');
}

interface RouteJson {
  dst?: string;
  prefsrc?: string;
}

/** Destinations of every IPv4 route in every table of the host (`ip -j route show table all`). */
export async function hostRoutes(): Promise<string[]> {
  const r = await run('ip', ['-4', '-j', 'route', 'show', 'table', 'all']);
  const routes = JSON.parse(r.stdout || '[]') as RouteJson[];
  const out: string[] = [];
  for (const x of routes) {
    if (x.dst && x.dst !== 'default') out.push(x.dst);
    if (x.prefsrc) out.push(x.prefsrc);
  }
  return out;
}

export interface AddressHolder {
  ifname: string;
  ifindex: number;
}

/** Links holding an IPv4 address inside `prefix`, up or down (a down link has an address but no route). */
export async function addressHolders(prefix: string): Promise<AddressHolder[]> {
  const c = parseCidr(prefix);
  const r = await run('ip', ['-4', '-j', 'addr', 'show']);
  const links = JSON.parse(r.stdout || '[]') as Array<{ ifname: string; ifindex: number; addr_info?: Array<{ local?: string; prefixlen?: number }> }>;
  return links
    .filter((l) => (l.addr_info ?? []).some((a) => a.local !== undefined && overlaps(parseCidr(`${a.local}/${a.prefixlen ?? 32}`, true), c)))
    .map((l) => ({ ifname: l.ifname, ifindex: l.ifindex }));
}

/**
 * Two daemons choosing at the same moment both see a candidate free (neither bridge has its route yet) and both take
 * it; the second DNS server then cannot bind the shared gateway address. The bridge made later (the higher ifindex,
 * which the kernel never reuses while the other lives) yields, so exactly one of the two moves on.
 */
export function lostSubnetRace(holders: AddressHolder[], bridge: string): boolean {
  const mine = holders.find((h) => h.ifname === bridge);
  return holders.some((h) => h.ifname !== bridge && (mine === undefined || h.ifindex < mine.ifindex));
}
