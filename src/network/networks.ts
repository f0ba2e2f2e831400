// Networks: the bridge (vSwitch), its gateway address, its DNS server and its membership in the nft sets.

import { faultPoint } from '../common/fault.js';
import { alreadyExists, conflict, invalid } from '../common/errors.js';
import { newId } from '../common/ids.js';
import type { Ctx } from './context.js';
import { DnsServer } from './dns/server.js';
import { hostNameservers } from './etc.js';
import { newIpam } from './ipam.js';
import { contains, firstHost, formatIp, isIp, overlaps, parseCidr, parseIp } from './ipv4.js';
import * as k from './kernel.js';
import { bridgeName, macForBridge, ownerAlias } from './names.js';
import { networkElems, subnetOf } from './nft/elements.js';
import { normalizeNetworkPolicy } from './policies.js';
import { addressHolders, chooseSubnet, defaultCandidates, hostRoutes, lostSubnetRace } from './subnets.js';
import { checkSubnet6, family, hostRoutes6, ipv6Unavailable, subnet6 } from './dualstack.js';
import type { CreateNetworkRequest, Network, Subnet } from './types.js';

/** `avoid`: subnets this create lost to another daemon choosing at the same moment (see lostSubnetRace); `tries`:
 *  how many times it chose again. */
export async function createNetwork(ctx: Ctx, req: CreateNetworkRequest, avoid: string[] = [], tries = 0): Promise<Network> {
  const name = String(req.Name ?? '');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(name)) throw invalid(`bad network name: ${name}`);
  if ([...ctx.networks.values()].some((n) => n.Name === name)) throw alreadyExists(`network ${name} already exists`);
  const type = req.Type ?? 'nat';
  if (!['nat', 'internal', 'l2bridge'].includes(type)) throw invalid(`bad network type: ${type}`);
  if (type === 'l2bridge') {
    if (!req.Interface) throw invalid('an l2bridge network needs a host Interface');
    if (!req.Subnets?.length) throw invalid('an l2bridge network needs its LAN subnet');
    if (!(await k.linkExists(req.Interface))) throw invalid(`no such host interface: ${req.Interface}`);
    if ([...ctx.networks.values()].some((n) => n.Interface === req.Interface)) throw conflict(`interface ${req.Interface} is already bridged`);
  } else if (req.Interface) throw invalid('only l2bridge networks take an Interface');
  // At most one subnet per family; IPv4 is always there, IPv6 makes the network dual-stack.
  const asked = req.Subnets ?? [];
  const v6asked = asked.filter((s) => s.IpAddressPrefix !== undefined && family(String(s.IpAddressPrefix)) === 6);
  const v4asked = asked.filter((s) => !v6asked.includes(s));
  if (v4asked.length > 1 || v6asked.length > 1) throw invalid('a network has at most one IPv4 and one IPv6 subnet');
  const auto = v4asked.length === 0;
  const subnet = await pickSubnet(ctx, v4asked[0], type, avoid);
  const subnets: Subnet[] = [subnet];
  if (v6asked.length || req.EnableIpv6) {
    if (type === 'l2bridge') throw invalid('IPv6 is not supported on l2bridge networks');
    const why = await ipv6Unavailable();
    if (why) throw invalid(`cannot create IPv6 network ${name}: ${why}`);
    const taken = [...ctx.networks.values()].flatMap((n) => subnet6(n)?.IpAddressPrefix ?? []);
    subnets.push(checkSubnet6(v6asked[0], subnet, taken, await hostRoutes6()));
  }
  const used = new Set([...ctx.networks.values()].map((n) => n.Bridge));
  let idx = 0;
  while (used.has(bridgeName(ctx.prefix, idx))) idx++;
  const net: Network = {
    Id: newId(),
    Name: name,
    Type: type,
    Ipams: [{ Type: 'Static', Subnets: subnets }],
    Dns: { ServerList: req.Dns?.ServerList ?? [], Search: req.Dns?.Search ?? [] },
    Policies: (req.Policies ?? []).map(normalizeNetworkPolicy),
    Bridge: bridgeName(ctx.prefix, idx),
    CreatedAt: new Date().toISOString(),
  };
  if (req.Interface) net.Interface = req.Interface;
  if (req.Labels && Object.keys(req.Labels).length) net.Labels = { ...req.Labels };
  if (req.Options && Object.keys(req.Options).length) net.Options = { ...req.Options };
  for (const s of net.Dns.ServerList ?? []) if (!isIp(s) && !/^[\d.]+:\d+$/.test(s)) throw invalid(`bad DNS server: ${s}`);
  const ipam = newIpam(subnet.IpAddressPrefix, subnet.GatewayAddress, subnet.IpRange, Object.values(subnet.Reserved ?? {}));
  await ctx.store.put('ipam', net.Id, ipam);
  ctx.ipam.set(net.Id, ipam);
  await ctx.store.put('networks', net.Id, net);
  ctx.networks.set(net.Id, net);
  faultPoint('network.create.after-record');
  const raced = new Error('subnet taken by another network at the same moment');
  try {
    await bringUp(ctx, net);
    if (auto && lostSubnetRace(await addressHolders(subnet.IpAddressPrefix), net.Bridge)) throw raced;
    faultPoint('network.create.after-bridge');
    await ctx.changeElems(networkElems(net), []);
  } catch (e) {
    // Judged while the bridge still exists: a DNS server that could not bind the gateway is the same race, seen first.
    const prefix = subnet.IpAddressPrefix;
    const holders = auto && tries < 8 ? await addressHolders(prefix).catch(() => []) : [];
    const contested = e === raced || holders.some((h) => h.ifname !== net.Bridge);
    await removeNetwork(ctx, net).catch(() => {});
    if (!contested) throw e;
    ctx.log.warn({ network: name, subnet: prefix }, 'subnet taken by another network meanwhile; choosing again');
    // The later bridge gives the subnet up. The earlier one failed only while the other held the address too: it takes
    // the same subnet again once that has gone (giving it up as well left both to collide on the next candidate).
    if (e !== raced && !lostSubnetRace(holders, net.Bridge)) {
      for (let i = 0; i < 40 && (await addressHolders(prefix).catch(() => [])).length; i++) await new Promise((r) => setTimeout(r, 50));
      return createNetwork(ctx, req, avoid, tries + 1);
    }
    return createNetwork(ctx, req, [...avoid, prefix], tries + 1);
  }
  return net;
}

async function pickSubnet(ctx: Ctx, want: Subnet | undefined, type: Network['Type'], avoid: string[]): Promise<Subnet> {
  const taken = [...ctx.networks.values()].map(subnetOf);
  let prefix: string;
  if (want?.IpAddressPrefix) {
    const c = parseCidr(want.IpAddressPrefix);
    if (c.len > 30) throw invalid(`subnet ${want.IpAddressPrefix} is too small`);
    const clash = taken.find((t) => overlaps(parseCidr(t), c));
    if (clash) throw conflict(`subnet ${want.IpAddressPrefix} overlaps network subnet ${clash}`);
    prefix = want.IpAddressPrefix;
  } else {
    prefix = chooseSubnet(ctx.opts.subnetPool ?? defaultCandidates(), await hostRoutes(), [...taken, ...avoid]);
  }
  const c = parseCidr(prefix);
  let gw = want?.GatewayAddress;
  if (gw !== undefined && (!isIp(gw) || !contains(c, parseIp(gw)))) throw invalid(`gateway ${gw} is not in ${prefix}`);
  if (gw === undefined && type !== 'l2bridge') gw = formatIp(firstHost(c));
  const out: Subnet = gw === undefined ? { IpAddressPrefix: prefix } : { IpAddressPrefix: prefix, GatewayAddress: gw };
  if (want?.IpRange !== undefined) {
    const r = parseCidr(want.IpRange);
    if (r.len < c.len || !contains(c, r.base)) throw invalid(`IP range ${want.IpRange} is not inside ${prefix}`);
    out.IpRange = want.IpRange;
  }
  const reserved = Object.values(want?.Reserved ?? {});
  for (const a of reserved) if (!isIp(a) || !contains(c, parseIp(a))) throw invalid(`reserved address ${a} is not in ${prefix}`);
  if (reserved.length) out.Reserved = { ...want!.Reserved };
  return out;
}

/** Whether Silo owns the gateway address (and so runs the DNS server there). */
export function ownsGateway(n: Network): boolean {
  return n.Type !== 'l2bridge' && n.Ipams[0].Subnets[0].GatewayAddress !== undefined;
}

/** Idempotent: makes the bridge, its address, its sysctls, its uplink (l2bridge) and its DNS server exist. */
export async function bringUp(ctx: Ctx, n: Network): Promise<void> {
  const s = n.Ipams[0].Subnets[0];
  const addr = ownsGateway(n) ? `${s.GatewayAddress}/${parseCidr(s.IpAddressPrefix).len}` : undefined;
  const s6 = subnet6(n);
  const addr6 = s6?.GatewayAddress ? `${s6.GatewayAddress}/${s6.IpAddressPrefix.split('/')[1]}` : undefined;
  // IPv6 forwarding is host-wide (there is no per-interface switch that routes): turned on, and recorded, as IPv4's.
  if (s6) await ctx.forwarding('net.ipv6.conf.all.forwarding');
  if (!(await k.linkExists(n.Bridge))) await k.createBridge(n.Bridge, macForBridge(n.Id), ownerAlias(ctx.prefix, 'br', n.Id), addr, addr6);
  else {
    if (addr) await k.ensureAddress(n.Bridge, addr);
    if (addr6) await k.ensureAddress(n.Bridge, addr6);
  }
  // route_localnet: DNAT of the host's own 127.0.0.1 traffic to a container leaves through this bridge.
  if (n.Type === 'nat') await k.setSysctl(`net.ipv4.conf.${n.Bridge}.route_localnet`, '1');
  if (n.Type === 'l2bridge' && n.Interface) await k.setMaster(n.Interface, n.Bridge);
  if (ownsGateway(n) && !ctx.dns.has(n.Id)) {
    const server = new DnsServer({
      address: s.GatewayAddress!,
      lookup: (name, from) => lookupName(ctx, n, name, from),
      upstreams: () => n.Dns.ServerList?.length ? n.Dns.ServerList : ctx.opts.dnsUpstreams ?? ctx.hostResolvers,
      forward: n.Type !== 'internal',
      log: ctx.log.child({ network: n.Name }),
    });
    await server.start();
    ctx.dns.set(n.Id, server);
  }
}

/**
 * Names on network n: endpoint names and aliases, also with one of the network's search domains appended. A container
 * connected to several networks (asking from `from`) also sees the names of its other networks, as with docker.
 */
export function lookupName(ctx: Ctx, n: Network, name: string, from?: string): string[] | undefined {
  const nets = new Set([n.Id]);
  const asker = from === undefined ? undefined : [...ctx.endpoints.values()].find((e) => e.NetworkId === n.Id && e.IpAddress === from);
  if (asker?.NamespaceId) for (const e of ctx.endpoints.values()) if (e.NamespaceId === asker.NamespaceId) nets.add(e.NetworkId);
  const candidates = [name];
  for (const d of n.Dns.Search ?? []) {
    const suffix = '.' + d.toLowerCase().replace(/\.$/, '');
    if (name.endsWith(suffix)) candidates.push(name.slice(0, -suffix.length));
  }
  const ips: string[] = [];
  for (const ep of ctx.endpoints.values()) {
    if (!nets.has(ep.NetworkId)) continue;
    const names = [ep.Name, ...ep.Aliases].map((x) => x.toLowerCase());
    if (candidates.some((c) => names.includes(c))) ips.push(ep.IpAddress, ...(ep.Ipv6Address ? [ep.Ipv6Address] : []));
  }
  return ips.length ? ips : undefined;
}

export async function refreshHostResolvers(ctx: Ctx): Promise<void> {
  ctx.hostResolvers = await hostNameservers();
}

export async function deleteNetwork(ctx: Ctx, ref: string): Promise<void> {
  const n = ctx.network(ref);
  if ([...ctx.endpoints.values()].some((e) => e.NetworkId === n.Id)) throw conflict(`network ${n.Name} has active endpoints`);
  await ctx.changeElems([], networkElems(n));
  await removeNetwork(ctx, n);
}

/** Kernel objects and records of a network whose nft elements are already gone. */
async function removeNetwork(ctx: Ctx, n: Network): Promise<void> {
  await ctx.dns.get(n.Id)?.stop();
  ctx.dns.delete(n.Id);
  if (n.Interface) await k.setMaster(n.Interface, undefined);
  await k.deleteLink(n.Bridge);
  // Killed here: the record outlives the bridge, so the next start's reconcile brings the network up again whole
  // (bringUp is idempotent), and it can be removed again.
  faultPoint('network.remove.after-bridge');
  await ctx.store.remove('networks', n.Id);
  await ctx.store.remove('ipam', n.Id);
  ctx.networks.delete(n.Id);
  ctx.ipam.delete(n.Id);
}
