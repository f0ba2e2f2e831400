// IPv6 arithmetic on bigints, for dual-stack networks: parsing (with "::" and an embedded IPv4 tail), the canonical
// text of RFC 5952 (lower case, longest run of zero groups as "::"), prefixes.

import { invalid } from '../common/errors.js';

export interface Cidr6 {
  base: bigint;
  len: number;
}

const ALL = (1n << 128n) - 1n;

export function parseIp6(s: string): bigint {
  const t = s.trim().toLowerCase();
  const bad = () => invalid(`not an IPv6 address: ${s}`);
  if (!/^[0-9a-f:.]+$/.test(t) || t.split('::').length > 2) throw bad();
  let groups: number[] = [];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    items.forEach((g, i) => {
      if (i === items.length - 1 && g.includes('.')) {
        const v4 = g.split('.').map(Number);
        if (v4.length !== 4 || v4.some((x, j) => !/^\d{1,3}$/.test(g.split('.')[j]) || x > 255)) throw bad();
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(g)) throw bad();
        out.push(parseInt(g, 16));
      }
    });
    return out;
  };
  if (t.includes('::')) {
    const [a, b] = t.split('::');
    const head = parse(a);
    const tail = parse(b);
    if (head.length + tail.length > 7) throw bad();
    groups = [...head, ...Array(8 - head.length - tail.length).fill(0), ...tail];
  } else groups = parse(t);
  if (groups.length !== 8) throw bad();
  return groups.reduce((n, g) => (n << 16n) | BigInt(g), 0n);
}

export function isIp6(s: string): boolean {
  try {
    parseIp6(s);
    return true;
  } catch {
    return false;
  }
}

export function formatIp6(n: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of two or more zero groups (the first of equal ones) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

const mask = (len: number) => (len === 0 ? 0n : (ALL << BigInt(128 - len)) & ALL);

/** "fd00:1::/64" → {base, len}; a bare address is a /128. Host bits must be clear unless `loose`. */
export function parseCidr6(s: string, loose = false): Cidr6 {
  const [addr, lenS, extra] = s.trim().split('/');
  const len = lenS === undefined ? 128 : Number(lenS);
  if (extra !== undefined || !Number.isInteger(len) || len < 0 || len > 128 || (lenS !== undefined && !/^\d+$/.test(lenS))) throw invalid(`not an IPv6 CIDR: ${s}`);
  const ip = parseIp6(addr);
  const base = ip & mask(len);
  if (base !== ip && !loose) throw invalid(`CIDR ${s} has host bits set`);
  return { base, len };
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIp6(c.base)}/${c.len}`;
}

export function contains6(c: Cidr6, ip: bigint): boolean {
  return (ip & mask(c.len)) === c.base;
}

export function overlaps6(a: Cidr6, b: Cidr6): boolean {
  const m = mask(Math.min(a.len, b.len));
  return (a.base & m) === (b.base & m);
}

/** Is it a unique local address (fc00::/7), the only kind Silo hands out by itself? */
export const isUla = (ip: bigint): boolean => ip >> 121n === 0x7en;

export const isLoopback6 = (s: string): boolean => isIp6(s) && parseIp6(s) === 1n;
