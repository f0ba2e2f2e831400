// Daemon start: make the kernel match the stored objects. Orphans carrying this prefix (links by their ifalias, netns
// by exact name) are removed; missing bridges, namespaces and veths are re-made; the nft table is rebuilt in one
// transaction from the objects (conntrack state survives, so established flows keep going). Also purge(), which
// removes everything of this prefix.

import { readFile, rm } from 'node:fs/promises';
import type { Ctx } from './context.js';
import { plug } from './attach.js';
import { prune } from './ipam.js';
import * as k from './kernel.js';
import { rebalance } from './lbslots.js';
import { isOwnNetns, parseOwnerAlias } from './names.js';
import { elementLines, endpointElems, lbFrontendElems, networkElems, type Elem } from './nft/elements.js';
import { LB_SLOTS, lbMapName, lbObjects } from './nft/ruleset.js';
import { bringUp, createNetwork, refreshHostResolvers } from './networks.js';

export const DEFAULT_NETWORK = 'nat';

export async function reconcile(ctx: Ctx): Promise<void> {
  await ctx.forwarding('net.ipv4.ip_forward');
  await refreshHostResolvers(ctx);
  await checkBridgeNetfilter(ctx);
  await pruneIpam(ctx);
  await removeOrphans(ctx);
  for (const n of ctx.networks.values()) {
    try {
      await bringUp(ctx, n);
    } catch (e) {
      ctx.log.warn({ network: n.Name, err: (e as Error).message }, 'restoring the network failed');
    }
  }
  await replug(ctx);
  await rebuildTable(ctx);
  if (ctx.opts.defaultNetwork && ![...ctx.networks.values()].some((n) => n.Name === DEFAULT_NETWORK)) {
    await createNetwork(ctx, { Name: DEFAULT_NETWORK, Type: 'nat' });
  }
}

/** Without br_netfilter, frames between containers of one bridge skip the inet hooks, so ACLs between them do not
 * apply (everything else works). Silo does not flip this host-wide switch itself; it says so. */
async function checkBridgeNetfilter(ctx: Ctx): Promise<void> {
  const on = await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').then((s) => s.trim() === '1', () => false);
  if (!on) ctx.log.warn('br_netfilter is off: ACLs between endpoints of the same network are not enforced');
}

async function pruneIpam(ctx: Ctx): Promise<void> {
  for (const [netId, s] of ctx.ipam) {
    if (!ctx.networks.has(netId)) {
      await ctx.store.remove('ipam', netId);
      ctx.ipam.delete(netId);
      continue;
    }
    const next = prune(s, (owner) => ctx.endpoints.get(owner)?.NetworkId === netId);
    if (Object.keys(next.allocated).length !== Object.keys(s.allocated).length) {
      // Addresses of endpoints that never got a record (an interrupted create, or the endpoint pool of the last run)
      // go back. Only a cleanup: on a full disk the daemon still starts, and the next allocation writes it.
      ctx.ipam.set(netId, next);
      await ctx.store.put('ipam', netId, next).catch((e) => ctx.log.warn({ err: (e as Error).message }, 'writing the pruned address state failed'));
    }
  }
}

async function removeOrphans(ctx: Ctx): Promise<void> {
  for (const l of await k.listLinks()) {
    const owner = parseOwnerAlias(ctx.prefix, l.alias);
    if (!owner) continue;
    const keep =
      owner.kind === 'br'
        ? ctx.networks.get(owner.id)?.Bridge === l.name
        : ctx.endpoints.get(owner.id)?.HostInterface === l.name && ctx.endpoints.get(owner.id)?.NamespaceId !== undefined;
    if (!keep) {
      ctx.log.info({ link: l.name }, 'removing an orphan link');
      await k.deleteLink(l.name);
    }
  }
  const known = new Set([...ctx.namespaces.values()].map((n) => n.Name));
  for (const name of await k.listNetns()) {
    if (isOwnNetns(ctx.prefix, name) && !known.has(name)) {
      ctx.log.info({ netns: name }, 'removing an orphan network namespace');
      await k.deleteNetns(name);
    }
  }
}

/** Namespaces whose netns vanished (e.g. a reboot) are re-made; attached endpoints whose veth is gone are re-plugged. */
async function replug(ctx: Ctx): Promise<void> {
  const present = new Set(await k.listNetns());
  for (const ns of ctx.namespaces.values()) if (!present.has(ns.Name)) await k.createNetns(ns.Name);
  // One listing for all endpoints: a `ip link show` each would cost a process per container at every start.
  const links = new Set((await k.listLinks()).map((l) => l.name));
  for (const ep of ctx.endpoints.values()) {
    const ns = ep.NamespaceId ? ctx.namespaces.get(ep.NamespaceId) : undefined;
    if (!ns || !ep.InterfaceName) continue;
    if (links.has(ep.HostInterface)) continue;
    try {
      await plug(ctx, ep, ns, ep.InterfaceName);
    } catch (e) {
      ctx.log.warn({ endpoint: ep.Name, err: (e as Error).message }, 're-plugging the endpoint failed');
    }
  }
}

async function rebuildTable(ctx: Ctx): Promise<void> {
  ctx.elemRefs.clear();
  for (const n of ctx.networks.values()) ctx.countElems(networkElems(n));
  for (const ep of ctx.endpoints.values()) {
    const n = ctx.networks.get(ep.NetworkId);
    if (n) ctx.countElems(endpointElems(ep, n.Type));
  }
  const elems: Elem[] = [...ctx.elemRefs.values()].map((r) => r.elem);
  let extra = elementLines('add', ctx.nft.table, elems);
  for (const lb of ctx.lbs.values()) {
    // Keep the kernel's slot table where it is still valid, so SourceIP clients keep their backend.
    const byIp = new Map(lb.Endpoints.map((id) => [ctx.endpoints.get(id)?.IpAddress, id]));
    const current: (string | undefined)[] = [];
    for (const [slot, ip] of await ctx.nft.mapElements(lbMapName(lb.Id))) current[slot] = byIp.get(ip);
    const backends = lb.Endpoints.filter((id) => ctx.endpoints.has(id));
    const { slots } = rebalance(current, backends, LB_SLOTS);
    ctx.lbSlots.set(lb.Id, slots);
    extra += lbObjects(ctx.nft.table, lb);
    const items = slots.flatMap((id, i) => (id === undefined ? [] : [`${i} : ${ctx.endpoints.get(id)!.IpAddress}`]));
    if (items.length) extra += `add element inet ${ctx.nft.table} ${lbMapName(lb.Id)} { ${items.join(', ')} }\n`;
    extra += elementLines('add', ctx.nft.table, lbFrontendElems(lb));
  }
  await ctx.nft.rebuild(extra);
}

/** Everything of this prefix goes: DNS servers, links, netns, the nft table, the state and run directories. */
export async function purge(ctx: Ctx): Promise<void> {
  for (const d of ctx.dns.values()) await d.stop();
  ctx.dns.clear();
  for (const n of ctx.networks.values()) if (n.Interface) await k.setMaster(n.Interface, undefined);
  for (const l of await k.listLinks()) if (parseOwnerAlias(ctx.prefix, l.alias)) await k.deleteLink(l.name);
  for (const name of await k.listNetns()) if (isOwnNetns(ctx.prefix, name)) await k.deleteNetns(name);
  await ctx.nft.destroy();
  await ctx.store.removeAll();
  await rm(ctx.runDir, { recursive: true, force: true });
  for (const m of [ctx.networks, ctx.endpoints, ctx.namespaces, ctx.lbs, ctx.ipam, ctx.lbSlots, ctx.elemRefs]) m.clear();
}
