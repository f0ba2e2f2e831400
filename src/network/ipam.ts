// Static IPAM for one subnet. Allocation is next-fit from a persisted cursor: a freed address is handed out again
// only after the whole range has been walked, so stale ARP entries and conntrack flows of a removed container rarely
// meet its successor. The state is persisted (atomically) before the caller uses the address, so an address is never
// given to two live endpoints, across daemon restarts too.

import { noCapacity, conflict, invalid } from '../common/errors.js';
import { broadcast, contains, formatIp, parseCidr, parseIp, size } from './ipv4.js';

export interface IpamState {
  subnet: string;
  gateway?: string;
  /** Next address to try (as a dotted string, for readable state files). */
  cursor: string;
  /** address → owner (endpoint id). */
  allocated: Record<string, string>;
  /** Automatic allocation only from this CIDR (docker's --ip-range). */
  range?: string;
  /** Never handed out (docker's --aux-address). */
  reserved?: string[];
}

export function newIpam(subnet: string, gateway?: string, range?: string, reserved?: string[]): IpamState {
  const c = parseCidr(range ?? subnet);
  return { subnet, gateway, cursor: formatIp(c.base), allocated: {}, ...(range ? { range } : {}), ...(reserved?.length ? { reserved } : {}) };
}

/** Addresses that are never handed out: network, broadcast (for prefixes up to /30) and the gateway. */
function reserved(s: IpamState, ip: number): boolean {
  const c = parseCidr(s.subnet);
  if (c.len <= 30 && (ip === c.base || ip === broadcast(c))) return true;
  if (s.reserved?.some((r) => parseIp(r) === ip)) return true;
  return s.gateway !== undefined && parseIp(s.gateway) === ip;
}

/** Allocates `want` (checked) or the next free address; returns the new state and the address. Pure. */
export function allocate(s: IpamState, owner: string, want?: string): { state: IpamState; ip: string } {
  const c = parseCidr(s.subnet);
  if (want !== undefined) {
    const ip = parseIp(want);
    if (!contains(c, ip)) throw invalid(`address ${want} is not in subnet ${s.subnet}`);
    if (reserved(s, ip)) throw invalid(`address ${want} is reserved in subnet ${s.subnet}`);
    const owned = s.allocated[formatIp(ip)];
    if (owned !== undefined) throw conflict(`address ${want} is already in use`);
    return { state: { ...s, allocated: { ...s.allocated, [formatIp(ip)]: owner } }, ip: formatIp(ip) };
  }
  const r = s.range ? parseCidr(s.range) : c;
  const n = size(r);
  let cur = parseIp(s.cursor);
  if (!contains(r, cur)) cur = r.base;
  for (let i = 0; i < n; i++) {
    const ip = r.base + ((cur - r.base + i) % n);
    const key = formatIp(ip);
    if (reserved(s, ip) || s.allocated[key] !== undefined) continue;
    const next = r.base + ((ip - r.base + 1) % n);
    return { state: { ...s, cursor: formatIp(next), allocated: { ...s.allocated, [key]: owner } }, ip: key };
  }
  throw noCapacity(`subnet ${s.subnet}${s.range ? ` (range ${s.range})` : ''} has no free address`);
}

export function release(s: IpamState, ip: string): IpamState {
  if (s.allocated[ip] === undefined) return s;
  const allocated = { ...s.allocated };
  delete allocated[ip];
  return { ...s, allocated };
}

/** Drops allocations whose owner no longer exists (a crash between allocating and storing the endpoint). */
export function prune(s: IpamState, live: (owner: string) => boolean): IpamState {
  const allocated: Record<string, string> = {};
  for (const [ip, owner] of Object.entries(s.allocated)) if (live(owner)) allocated[ip] = owner;
  return { ...s, allocated };
}
