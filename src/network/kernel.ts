// Links, network namespaces and sysctls through iproute2 and /proc/sys. Each function touches only the objects it
// is named; listing functions report what carries Silo's ownership marks so reconcile can judge orphans.

import { readFile, writeFile } from 'node:fs/promises';
import { run } from '../common/exec.js';
import { internal } from '../common/errors.js';

async function ipBatch(lines: string[], netns?: string): Promise<void> {
  const args = netns ? ['-n', netns, '-batch', '-'] : ['-batch', '-'];
  const r = await run('ip', args, { input: lines.join('\n') + '\n', allowFail: true });
  if (r.code !== 0) throw internal(`ip: ${r.stderr.trim().split('\n')[0] ?? 'failed'}`, new Error(r.stderr));
}

export interface LinkInfo {
  name: string;
  alias?: string;
  master?: string;
  kind?: string;
}

export async function listLinks(): Promise<LinkInfo[]> {
  const r = await run('ip', ['-j', '-d', 'link', 'show']);
  const links = JSON.parse(r.stdout || '[]') as Array<{ ifname: string; ifalias?: string; master?: string; linkinfo?: { info_kind?: string } }>;
  return links.map((l) => ({ name: l.ifname, alias: l.ifalias, master: l.master, kind: l.linkinfo?.info_kind }));
}

export async function linkExists(name: string): Promise<boolean> {
  const r = await run('ip', ['link', 'show', 'dev', name], { allowFail: true });
  return r.code === 0;
}

/** The link's ifalias ('' if none), or null when there is no such link. */
export async function linkAlias(name: string): Promise<string | null> {
  const r = await run('ip', ['-j', '-d', 'link', 'show', 'dev', name], { allowFail: true });
  if (r.code !== 0) return null;
  const l = (JSON.parse(r.stdout || '[]') as Array<{ ifalias?: string }>)[0];
  return l ? (l.ifalias ?? '') : null;
}

export async function deleteLink(name: string): Promise<void> {
  await run('ip', ['link', 'del', 'dev', name], { allowFail: true });
}

/** `address6`: a dual-stack network's IPv6 gateway, without duplicate address detection (it is the only one). */
export async function createBridge(name: string, mac: string, alias: string, address?: string, address6?: string): Promise<void> {
  const lines = [`link add name ${name} address ${mac} type bridge`, `link set dev ${name} alias "${alias}"`];
  if (address) lines.push(`addr add ${address} dev ${name}`);
  if (address6) lines.push(`addr add ${address6} dev ${name} nodad`);
  lines.push(`link set dev ${name} up`);
  await ipBatch(lines);
}

/** Ensures the bridge carries `address` (re-made after someone removed it). */
export async function ensureAddress(dev: string, address: string): Promise<void> {
  await run('ip', ['addr', 'replace', address, 'dev', dev, ...(address.includes(':') ? ['nodad'] : [])]);
}

export async function setMaster(dev: string, master: string | undefined): Promise<void> {
  if (master) await ipBatch([`link set dev ${dev} master ${master}`, `link set dev ${dev} up`]);
  else await run('ip', ['link', 'set', 'dev', dev, 'nomaster'], { allowFail: true });
}

export interface VethSpec {
  host: string;
  alias: string;
  bridge: string;
  netns: string;
  ifname: string;
  mac: string;
  address: string;
  gateway?: string;
  defaultRoute: boolean;
  /** A dual-stack endpoint's IPv6 address (CIDR) and gateway; the default route via it when `defaultRoute6`. */
  address6?: string;
  gateway6?: string;
  defaultRoute6?: boolean;
  routes: Array<{ prefix: string; via: string }>;
}

/** A veth pair whose peer is born inside the namespace with its final name, MAC and address. */
/** `withNetns`: the namespace is made by the same ip process, first (endpoints of the pool: two processes in all). */
export async function createVeth(v: VethSpec, o: { withNetns?: boolean } = {}): Promise<void> {
  await ipBatch([
    ...(o.withNetns ? [`netns add ${v.netns}`] : []),
    `link add name ${v.host} type veth peer name ${v.ifname} address ${v.mac} netns ${v.netns}`,
    `link set dev ${v.host} alias "${v.alias}"`,
    `link set dev ${v.host} master ${v.bridge}`,
    // Hairpin: with br_netfilter a container reaching itself through a published port is DNATed back out of the
    // port it came in on, which the bridge refuses unless the port is in hairpin mode (docker does the same).
    `link set dev ${v.host} type bridge_slave hairpin on`,
    `link set dev ${v.host} up`,
  ]);
  const inner = ['link set dev lo up', `addr add ${v.address} dev ${v.ifname}`, `link set dev ${v.ifname} up`];
  if (v.defaultRoute && v.gateway) inner.push(`route add default via ${v.gateway} dev ${v.ifname}`);
  if (v.address6) inner.push(`addr add ${v.address6} dev ${v.ifname} nodad`);
  if (v.address6 && v.defaultRoute6 && v.gateway6) inner.push(`route add ::/0 via ${v.gateway6} dev ${v.ifname}`);
  for (const r of v.routes) inner.push(`route add ${r.prefix} via ${r.via} dev ${v.ifname}`);
  try {
    await ipBatch(inner, v.netns);
  } catch (e) {
    await deleteLink(v.host);
    throw e;
  }
}

export async function hasDefaultRoute(netns: string, family: 4 | 6 = 4): Promise<boolean> {
  const r = await run('ip', ['-n', netns, `-${family}`, '-j', 'route', 'show', 'default'], { allowFail: true });
  return r.code === 0 && (JSON.parse(r.stdout || '[]') as unknown[]).length > 0;
}

export async function addRoute(netns: string, prefix: string, via: string, replace = false): Promise<void> {
  await run('ip', ['-n', netns, 'route', replace ? 'replace' : 'add', prefix, 'via', via]);
}

export async function delRoute(netns: string, prefix: string, via: string): Promise<void> {
  await run('ip', ['-n', netns, 'route', 'del', prefix, 'via', via], { allowFail: true });
}

export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['-j', 'netns', 'list'], { allowFail: true });
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as Array<{ name: string }>).map((x) => x.name);
}

/** A netns with its loopback up; `loopback: false` leaves that to the caller's next batch in it (createVeth's). */
export async function createNetns(name: string, o: { loopback?: boolean } = {}): Promise<void> {
  await run('ip', ['netns', 'add', name]);
  if (o.loopback !== false) await run('ip', ['-n', name, 'link', 'set', 'dev', 'lo', 'up']);
}

/**
 * Host-side links, then namespaces, deleted by one ip process; each line is tried whatever happened to the one
 * before (-force), and what is already gone is no error, as deleteLink and deleteNetns.
 */
export async function deleteLinksAndNetns(links: string[], netns: string[]): Promise<void> {
  const lines = [...links.map((l) => `link del dev ${l}`), ...netns.map((n) => `netns delete ${n}`)];
  if (lines.length) await run('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
}

export async function deleteNetns(name: string): Promise<void> {
  await run('ip', ['netns', 'delete', name], { allowFail: true });
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await listNetns()).includes(name);
}

/** Writes a sysctl; returns the previous value (undefined if it was already `value`). */
export async function setSysctl(key: string, value: string): Promise<string | undefined> {
  const path = `/proc/sys/${key.replace(/\./g, '/')}`;
  const old = (await readFile(path, 'utf8')).trim();
  if (old === value) return undefined;
  await writeFile(path, value);
  return old;
}

/** A link's counters (/sys/class/net/<dev>/statistics), or undefined when the link is gone. */
export async function linkCounters(dev: string): Promise<Record<'rx_bytes' | 'tx_bytes' | 'rx_packets' | 'tx_packets' | 'rx_errors' | 'tx_errors' | 'rx_dropped' | 'tx_dropped', number> | undefined> {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(dev)) return undefined;
  const keys = ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets', 'rx_errors', 'tx_errors', 'rx_dropped', 'tx_dropped'] as const;
  try {
    const vals = await Promise.all(keys.map((k) => readFile(`/sys/class/net/${dev}/statistics/${k}`, 'utf8')));
    return Object.fromEntries(keys.map((k, i) => [k, Number(vals[i].trim())])) as Record<(typeof keys)[number], number>;
  } catch {
    return undefined;
  }
}
