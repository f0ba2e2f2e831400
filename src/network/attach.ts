// Namespaces (a netns per compute system) and attaching endpoints to them with a veth pair.

import { join } from 'node:path';
import { conflict } from '../common/errors.js';
import { newId } from '../common/ids.js';
import type { Ctx } from './context.js';
import * as k from './kernel.js';
import { netnsName, ownerAlias } from './names.js';
import type { Endpoint, Namespace } from './types.js';

const NETNS_DIR = '/run/netns';

/** `loopback: false` when an endpoint is attached next: its batch in the namespace brings `lo` up (one process less). */
export async function createNamespace(ctx: Ctx, o: { loopback?: boolean } = {}): Promise<Namespace> {
  const id = newId();
  const name = netnsName(ctx.prefix, id);
  const ns: Namespace = { Id: id, Name: name, Path: join(NETNS_DIR, name), Endpoints: [] };
  await k.createNetns(name, o);
  try {
    await ctx.store.put('namespaces', id, ns);
  } catch (e) {
    await k.deleteNetns(name);
    throw e;
  }
  ctx.namespaces.set(id, ns);
  return ns;
}

export async function deleteNamespace(ctx: Ctx, ref: string): Promise<void> {
  const ns = ctx.namespace(ref);
  for (const epId of [...ns.Endpoints]) await detachEndpoint(ctx, epId);
  await k.deleteNetns(ns.Name);
  await ctx.store.remove('namespaces', ns.Id);
  ctx.namespaces.delete(ns.Id);
}

export async function attachEndpoint(ctx: Ctx, epRef: string, nsRef: string): Promise<Endpoint> {
  const ep = ctx.endpoint(epRef);
  const ns = ctx.namespace(nsRef);
  if (ep.NamespaceId === ns.Id) return ep;
  if (ep.NamespaceId) throw conflict(`endpoint ${ep.Name} is already attached to namespace ${ep.NamespaceId.slice(0, 12)}`);
  const ifname = freeIfname(ctx, ns);
  await plug(ctx, ep, ns, ifname);
  const updated: Endpoint = { ...ep, NamespaceId: ns.Id, InterfaceName: ifname };
  const nsNext: Namespace = { ...ns, Endpoints: [...ns.Endpoints, ep.Id] };
  try {
    await ctx.store.put('endpoints', ep.Id, updated);
    await ctx.store.put('namespaces', ns.Id, nsNext);
  } catch (e) {
    await k.deleteLink(ep.HostInterface);
    await ctx.store.put('endpoints', ep.Id, ep).catch(() => {});
    throw e;
  }
  ctx.endpoints.set(ep.Id, updated);
  ctx.namespaces.set(ns.Id, nsNext);
  return updated;
}

/** The records of an endpoint made attached to a new namespace (a pooled one): each written once, side by side. */
export async function attachedRecords(ctx: Ctx, ep: Endpoint, ns: Namespace): Promise<void> {
  await Promise.all([ctx.store.put('endpoints', ep.Id, ep), ctx.store.put('namespaces', ns.Id, ns)]);
  ctx.endpoints.set(ep.Id, ep);
  ctx.namespaces.set(ns.Id, ns);
}

function freeIfname(ctx: Ctx, ns: Namespace): string {
  const used = new Set(ns.Endpoints.map((id) => ctx.endpoints.get(id)?.InterfaceName));
  let i = 0;
  while (used.has(`eth${i}`)) i++;
  return `eth${i}`;
}

/** Creates the veth pair: host side on the bridge, peer in the netns with address, MAC and routes. */
export async function plug(ctx: Ctx, ep: Endpoint, ns: Namespace, ifname: string): Promise<void> {
  const net = ctx.networks.get(ep.NetworkId)!;
  const alias = ownerAlias(ctx.prefix, 'ep', ep.Id);
  const spec: k.VethSpec = {
    host: ep.HostInterface,
    alias,
    bridge: net.Bridge,
    netns: ns.Name,
    ifname,
    mac: ep.MacAddress,
    address: `${ep.IpAddress}/${ep.PrefixLength}`,
    gateway: ep.GatewayAddress,
    // The first endpoint with a gateway provides the default route; later ones reach only their subnet. Routes in a
    // namespace come only with its endpoints' links: with none attached there is none to ask the kernel about.
    defaultRoute: ns.Endpoints.length === 0 || !(await k.hasDefaultRoute(ns.Name)),
    routes: routesOf(ep),
  };
  if (ep.Ipv6Address) {
    spec.address6 = `${ep.Ipv6Address}/${ep.Ipv6PrefixLength}`;
    spec.gateway6 = ep.Ipv6GatewayAddress;
    spec.defaultRoute6 = ns.Endpoints.length === 0 || !(await k.hasDefaultRoute(ns.Name, 6));
  }
  try {
    await k.createVeth(spec);
  } catch (e) {
    // A stale host side (a crash after creating it) makes `link add` fail; remove it only if its alias says ours,
    // then try again. Looked at only on failure: a fresh endpoint's name is new.
    const existing = await k.linkAlias(ep.HostInterface);
    if (existing === null) throw e;
    if (existing !== alias) throw conflict(`host interface ${ep.HostInterface} exists and is not this endpoint's`);
    await k.deleteLink(ep.HostInterface);
    await k.createVeth(spec);
  }
}

function routesOf(ep: Endpoint): Array<{ prefix: string; via: string }> {
  return ep.Policies.flatMap((p) => (p.Type === 'Route' ? [{ prefix: p.Settings.DestinationPrefix, via: p.Settings.NextHop }] : []));
}

/** After a policy change on an attached endpoint: routes removed or added inside its namespace. */
export async function applyRoutes(ctx: Ctx, before: Endpoint, after: Endpoint): Promise<void> {
  const ns = after.NamespaceId ? ctx.namespaces.get(after.NamespaceId) : undefined;
  if (!ns) return;
  const key = (r: { prefix: string; via: string }) => `${r.prefix}>${r.via}`;
  const old = routesOf(before);
  const now = routesOf(after);
  for (const r of old) if (!now.some((x) => key(x) === key(r))) await k.delRoute(ns.Name, r.prefix, r.via);
  for (const r of now) if (!old.some((x) => key(x) === key(r))) await k.addRoute(ns.Name, r.prefix, r.via, true);
}

export async function detachEndpoint(ctx: Ctx, epRef: string): Promise<Endpoint> {
  const ep = ctx.endpoint(epRef);
  if (!ep.NamespaceId) return ep;
  // Deleting the host side destroys the peer inside the namespace with it.
  await k.deleteLink(ep.HostInterface);
  const updated: Endpoint = { ...ep };
  delete updated.NamespaceId;
  delete updated.InterfaceName;
  await ctx.store.put('endpoints', ep.Id, updated);
  ctx.endpoints.set(ep.Id, updated);
  const ns = ctx.namespaces.get(ep.NamespaceId);
  if (ns) {
    const nsNext = { ...ns, Endpoints: ns.Endpoints.filter((x) => x !== ep.Id) };
    await ctx.store.put('namespaces', ns.Id, nsNext);
    ctx.namespaces.set(ns.Id, nsNext);
  }
  return updated;
}
