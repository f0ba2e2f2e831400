// Dual-stack networks: a nat or internal network may carry an IPv6 subnet beside its IPv4 one (Ipams[0].Subnets[1]).
// A container's IPv6 address is not allocated on its own: it is the IPv6 prefix plus the host part of its IPv4
// address (10.1.2.5 on 10.1.2.0/24 with fd12:3456::/64 → fd12:3456::5), so the one IPAM state of the network, its
// durability and its pruning cover both families, and no address is ever handed out twice in either.

import { readFile } from 'node:fs/promises';
import { run } from '../common/exec.js';
import { conflict, invalid } from '../common/errors.js';
import { randomBytes } from 'node:crypto';
import { formatCidr, isIp, parseCidr, parseIp, size } from './ipv4.js';
import { contains6, formatCidr6, formatIp6, isIp6, overlaps6, parseCidr6, parseIp6 } from './ipv6.js';
import type { Endpoint, Network, Subnet } from './types.js';

export const family = (addr: string): 4 | 6 => (addr.includes(':') ? 6 : 4);

/** A CIDR (or bare address) of either family in its canonical text; `loose` allows host bits. */
export function normalCidr(s: string, loose = true): string {
  return family(s) === 6 ? formatCidr6(parseCidr6(s, loose)) : formatCidr(parseCidr(s, loose));
}

export const isAnyIp = (s: string): boolean => isIp(s) || isIp6(s);

/** The network's IPv6 subnet, if it is dual-stack. */
export function subnet6(n: Network): Subnet | undefined {
  return n.Ipams[0].Subnets.find((s) => family(s.IpAddressPrefix) === 6);
}

/** The IPv6 address that goes with `ip4` on `n` (undefined on an IPv4-only network). */
export function ipv6For(n: Network, ip4: string): string | undefined {
  const s6 = subnet6(n);
  if (!s6) return undefined;
  const c4 = parseCidr(n.Ipams[0].Subnets[0].IpAddressPrefix);
  return formatIp6(parseCidr6(s6.IpAddressPrefix).base + BigInt(parseIp(ip4) - c4.base));
}

/** An endpoint's IPv6 fields for its IPv4 address on `n` (none on an IPv4-only network). */
export function ipv6Fields(n: Network, ip4: string): Pick<Endpoint, 'Ipv6Address' | 'Ipv6PrefixLength' | 'Ipv6GatewayAddress'> {
  const s6 = subnet6(n);
  const a = ipv6For(n, ip4);
  if (!s6 || !a) return {};
  return { Ipv6Address: a, Ipv6PrefixLength: parseCidr6(s6.IpAddressPrefix).len, ...(s6.GatewayAddress ? { Ipv6GatewayAddress: s6.GatewayAddress } : {}) };
}

/**
 * Why IPv6 cannot be used on this host, or undefined when it can: containers' addresses and the bridge's gateway
 * need the IPv6 stack on (no `ipv6.disable=1` boot option, `disable_ipv6` off for all and lo).
 */
export async function ipv6Unavailable(read: (p: string) => Promise<string> = (p) => readFile(p, 'utf8')): Promise<string | undefined> {
  for (const conf of ['all', 'lo']) {
    const v = await read(`/proc/sys/net/ipv6/conf/${conf}/disable_ipv6`).then((s) => s.trim(), () => undefined);
    if (v === undefined) return 'IPv6 is disabled on this host (the kernel has no IPv6 stack: ipv6.disable=1?)';
    if (v !== '0') return `IPv6 is disabled on this host (net.ipv6.conf.${conf}.disable_ipv6 = ${v})`;
  }
  return undefined;
}

/** Destinations of every IPv6 route of the host (`ip -6 -j route show table all`), link-local and multicast aside. */
export async function hostRoutes6(): Promise<string[]> {
  const r = await run('ip', ['-6', '-j', 'route', 'show', 'table', 'all'], { allowFail: true });
  const out: string[] = [];
  for (const x of JSON.parse(r.stdout || '[]') as { dst?: string }[]) {
    if (!x.dst || x.dst === 'default' || /^(fe80|ff[0-9a-f]{2}):/i.test(x.dst) || x.dst === '::1') continue;
    out.push(x.dst.includes('/') ? x.dst : `${x.dst}/128`);
  }
  return out;
}

/** A random unique-local /64 (RFC 4193: fd + a 40-bit global id + a 16-bit subnet id) that overlaps nothing in `busy`. */
export function randomUla(busy: string[], rand: () => Buffer = () => randomBytes(7)): string {
  for (let i = 0; i < 32; i++) {
    const b = rand();
    const words = [0xfd00 | b[0], (b[1] << 8) | b[2], (b[3] << 8) | b[4], (b[5] << 8) | b[6]].map((w) => w.toString(16));
    const cand = normalCidr(`${words.join(':')}::/64`, false);
    if (!busy.some((x) => overlaps6(parseCidr6(x, true), parseCidr6(cand)))) return cand;
  }
  throw conflict('no free IPv6 subnet found; give one explicitly');
}

/**
 * The IPv6 subnet of a dual-stack network, checked against its IPv4 one: large enough for every IPv4 host part,
 * overlapping no other network and no host route, its gateway the IPv4 gateway's host part unless given (then it
 * must not be an address a container could get). No ip-range or auxiliary addresses: they follow the IPv4 ones.
 */
export function checkSubnet6(want: Subnet | undefined, v4: Subnet, taken: string[], routes: string[]): Subnet {
  if (want?.IpRange !== undefined || Object.keys(want?.Reserved ?? {}).length) {
    throw invalid('an IPv6 subnet takes no IP range or auxiliary addresses: container IPv6 addresses follow their IPv4 ones');
  }
  const prefix = want?.IpAddressPrefix ? normalCidr(want.IpAddressPrefix, false) : randomUla([...taken, ...routes]);
  const c6 = parseCidr6(prefix);
  const c4 = parseCidr(v4.IpAddressPrefix);
  if (128 - c6.len < 32 - c4.len) throw invalid(`IPv6 subnet ${prefix} is smaller than IPv4 subnet ${v4.IpAddressPrefix}: every container needs an address in both`);
  const clash = taken.find((t) => overlaps6(parseCidr6(t, true), c6));
  if (clash) throw conflict(`subnet ${prefix} overlaps network subnet ${clash}`);
  const route = routes.find((t) => overlaps6(parseCidr6(t, true), c6));
  if (route) throw conflict(`subnet ${prefix} overlaps the host's route to ${route}`);
  const gw4 = v4.GatewayAddress === undefined ? undefined : BigInt(parseIp(v4.GatewayAddress) - c4.base);
  let gw: string;
  if (want?.GatewayAddress !== undefined) {
    if (!isIp6(want.GatewayAddress) || !contains6(c6, parseIp6(want.GatewayAddress))) throw invalid(`gateway ${want.GatewayAddress} is not in ${prefix}`);
    const off = parseIp6(want.GatewayAddress) - c6.base;
    if (off < BigInt(size(c4)) && off !== gw4) throw invalid(`IPv6 gateway ${want.GatewayAddress} is an address a container may get: give the IPv4 gateway's host part or one past the IPv4 subnet's size`);
    gw = formatIp6(parseIp6(want.GatewayAddress));
  } else gw = formatIp6(c6.base + (gw4 ?? 1n));
  return { IpAddressPrefix: prefix, GatewayAddress: gw };
}
