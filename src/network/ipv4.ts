// IPv4 arithmetic on unsigned 32-bit numbers. Every network has an IPv4 subnet; a dual-stack one's IPv6 is ipv6.ts's.

import { invalid } from '../common/errors.js';

export interface Cidr {
  /** Network address (host bits cleared). */
  base: number;
  len: number;
}

export function parseIp(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s.trim());
  if (!m) throw invalid(`not an IPv4 address: ${s}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw invalid(`not an IPv4 address: ${s}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function isIp(s: string): boolean {
  try {
    parseIp(s);
    return true;
  } catch {
    return false;
  }
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** "10.88.0.0/16" → {base, len}; a bare address is a /32. Host bits must be clear unless `loose`. */
export function parseCidr(s: string, loose = false): Cidr {
  const [addr, lenS] = s.trim().split('/');
  const len = lenS === undefined ? 32 : Number(lenS);
  if (!Number.isInteger(len) || len < 0 || len > 32 || (lenS !== undefined && !/^\d+$/.test(lenS))) {
    throw invalid(`not a CIDR: ${s}`);
  }
  const ip = parseIp(addr);
  const base = (ip & maskOf(len)) >>> 0;
  if (base !== ip && !loose) throw invalid(`CIDR ${s} has host bits set`);
  return { base, len };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.len}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.len);
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.len)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const len = Math.min(a.len, b.len);
  return ((a.base & maskOf(len)) >>> 0) === ((b.base & maskOf(len)) >>> 0);
}

/** First usable host address, the conventional gateway (.1 of a /16). */
export function firstHost(c: Cidr): number {
  return c.len >= 31 ? c.base : c.base + 1;
}

export function broadcast(c: Cidr): number {
  return (c.base + size(c) - 1) >>> 0;
}

export function isLoopback(s: string): boolean {
  return isIp(s) && parseIp(s) >>> 24 === 127;
}
