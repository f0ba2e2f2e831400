// Endpoints: an address from the network's IPAM, policies as nft elements, and (while attached) a veth pair.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { alreadyExists, conflict, invalid } from '../common/errors.js';
import { newId } from '../common/ids.js';
import { detachEndpoint, applyRoutes } from './attach.js';
import type { Ctx } from './context.js';
import { assignHostPorts } from './hostports.js';
import { allocate, release } from './ipam.js';
import { parseCidr, parseIp } from './ipv4.js';
import { removeBackendsFrom } from './loadbalancers.js';
import { macForIp, vethName } from './names.js';
import { family, ipv6Fields, subnet6 } from './dualstack.js';
import { endpointElems } from './nft/elements.js';
import { normalizeEndpointPolicy, policyKey, portsCollide } from './policies.js';
import type { CreateEndpointRequest, Endpoint, EndpointPolicy, ModifyEndpointRequest, Network, PortMappingSettings } from './types.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/** A host name as a name (docker takes underscores in them too), up to a DNS name's 253 characters. */
const HOST_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,252}$/;

/** The caller's part of an endpoint on `net`, checked: name, aliases, DNS, extra hosts and policies (host ports assigned). */
export async function endpointFields(ctx: Ctx, net: Network, req: CreateEndpointRequest): Promise<Pick<Endpoint, 'Name' | 'Aliases' | 'HostName' | 'Dns' | 'Policies' | 'ExtraHosts'>> {
  const name = String(req.name ?? '');
  if (!NAME_RE.test(name)) throw invalid(`bad endpoint name: ${name}`);
  const aliases = (req.aliases ?? []).map(String);
  for (const a of aliases) if (!NAME_RE.test(a)) throw invalid(`bad alias: ${a}`);
  const host = req.hostName === undefined ? undefined : String(req.hostName);
  if (host !== undefined && !HOST_RE.test(host)) throw invalid(`bad host name: ${host}`);
  for (const e of ctx.endpoints.values()) {
    if (e.NetworkId === net.Id && e.Name === name) throw alreadyExists(`endpoint ${name} already exists on network ${net.Name}`);
  }
  const asked = (req.policies ?? []).map(normalizeEndpointPolicy);
  checkFamilies(net, asked);
  checkPortConflicts(ctx, undefined, asked);
  const policies = await assignHostPorts(ctx, asked);
  return {
    Name: name,
    Aliases: aliases,
    ...(host ? { HostName: host } : {}),
    Dns: { ServerList: req.dns?.ServerList ?? [], Search: req.dns?.Search ?? [], ...(req.dns?.Options?.length ? { Options: req.dns.Options } : {}) },
    Policies: policies,
    ...(req.extraHosts?.length ? { ExtraHosts: req.extraHosts } : {}),
  };
}

export async function createEndpoint(ctx: Ctx, networkRef: string, req: CreateEndpointRequest): Promise<Endpoint> {
  const net = ctx.network(networkRef);
  const fields = await endpointFields(ctx, net, req);
  // The veth name carries 7 hex of the id; draw again on the (rare) clash with a live endpoint's.
  const vnames = new Set([...ctx.endpoints.values()].map((e) => e.HostInterface));
  let id = newId();
  while (vnames.has(vethName(ctx.prefix, id))) id = newId();
  const subnet = net.Ipams[0].Subnets[0];
  const { state, ip } = allocate(ctx.ipam.get(net.Id)!, id, req.ip);
  // The allocation is durable before anything uses the address: no address is ever handed out twice.
  await ctx.store.put('ipam', net.Id, state);
  ctx.ipam.set(net.Id, state);
  const ep: Endpoint = {
    Id: id,
    NetworkId: net.Id,
    IpAddress: ip,
    PrefixLength: parseCidr(subnet.IpAddressPrefix).len,
    MacAddress: req.mac?.toLowerCase() ?? macForIp(parseIp(ip)),
    ...ipv6Fields(net, ip),
    ...fields,
    HostInterface: vethName(ctx.prefix, id),
    CreatedAt: new Date().toISOString(),
  };
  if (subnet.GatewayAddress) ep.GatewayAddress = subnet.GatewayAddress;
  try {
    await ctx.store.put('endpoints', id, ep);
    ctx.endpoints.set(id, ep);
    await ctx.changeElems(endpointElems(ep, net.Type), []);
  } catch (e) {
    ctx.endpoints.delete(id);
    await ctx.store.remove('endpoints', id);
    await freeAddress(ctx, ep);
    throw e;
  }
  return ep;
}

/**
 * A port published on an IPv6 host address needs the container's IPv6 address: there is no userland proxy to carry
 * IPv6 to IPv4. And none on ::1: the kernel does not route what it DNATs from IPv6 loopback (IPv4 has route_localnet).
 */
function checkFamilies(net: Network, policies: EndpointPolicy[]): void {
  for (const p of policies) {
    if (p.Type !== 'PortMapping' || p.Settings.HostIp === undefined || family(p.Settings.HostIp) !== 6) continue;
    const at = `[${p.Settings.HostIp}]:${p.Settings.ExternalPort}`;
    if (p.Settings.HostIp === '::1') throw invalid(`cannot publish a port on ${at}: the kernel does not forward IPv6 loopback traffic to a container (no userland proxy); publish on [::] or a host IPv6 address`);
    if (!subnet6(net)) throw invalid(`cannot publish a port on ${at}: network ${net.Name} has no IPv6 subnet and Silo has no userland proxy to carry IPv6 to IPv4; create the network with IPv6 or publish on an IPv4 address`);
  }
}

function portMappings(policies: EndpointPolicy[]): PortMappingSettings[] {
  return policies.flatMap((p) => (p.Type === 'PortMapping' ? [p.Settings] : []));
}

/** A new port mapping must not collide with another endpoint's, another of its own, or a VIP-less LB's. */
function checkPortConflicts(ctx: Ctx, self: Endpoint | undefined, added: EndpointPolicy[], replacing = false): void {
  const mine = portMappings(added);
  const existing: Array<{ Protocol: string; ExternalPort: number; HostIp?: string; owner: string }> = [];
  for (const e of ctx.endpoints.values()) if (!(replacing && e.Id === self?.Id)) for (const pm of portMappings(e.Policies)) existing.push({ ...pm, owner: e.Name });
  for (const lb of ctx.lbs.values()) {
    if (lb.FrontendVIPs.length === 0) for (const pm of lb.PortMappings) existing.push({ ...pm, owner: `load balancer ${lb.Name}` });
  }
  mine.forEach((pm, i) => {
    const clash = existing.find((x) => portsCollide(x, pm)) ?? mine.slice(0, i).map((x) => ({ ...x, owner: self?.Name ?? 'itself' })).find((x) => portsCollide(x, pm));
    if (clash) throw conflict(`port ${pm.Protocol}/${pm.ExternalPort} is already mapped by ${clash.owner}`);
  });
}

export async function modifyEndpoint(ctx: Ctx, ref: string, req: ModifyEndpointRequest): Promise<Endpoint> {
  const ep = ctx.endpoint(ref);
  const net = ctx.networks.get(ep.NetworkId)!;
  const given = (req.Policies ?? []).map(normalizeEndpointPolicy);
  // Only the policies that change are translated, so one added port mapping is one element whatever else is there.
  let next: EndpointPolicy[];
  let added: EndpointPolicy[] = [];
  let removed: EndpointPolicy[] = [];
  if (req.RequestType === 'Add') {
    const have = new Set(ep.Policies.map(policyKey));
    checkFamilies(net, given);
    added = await assignHostPorts(ctx, given.filter((p) => !have.has(policyKey(p))));
    checkPortConflicts(ctx, ep, added);
    next = [...ep.Policies, ...added];
  } else if (req.RequestType === 'Remove') {
    const drop = new Set(given.map(policyKey));
    const missing = given.find((p) => !ep.Policies.some((q) => policyKey(q) === policyKey(p)));
    if (missing) throw invalid(`endpoint ${ep.Name} has no such ${missing.Type} policy`);
    next = ep.Policies.filter((p) => !drop.has(policyKey(p)));
    removed = ep.Policies.filter((p) => drop.has(policyKey(p)));
  } else if (req.RequestType === 'Update') {
    checkFamilies(net, given);
    checkPortConflicts(ctx, ep, given, true);
    next = await assignHostPorts(ctx, given, ep.Id);
    added = next;
    removed = ep.Policies;
  } else throw invalid(`bad RequestType: ${String(req.RequestType)}`);
  const updated: Endpoint = { ...ep, Policies: next };
  const elems = (policies: EndpointPolicy[]) => endpointElems({ ...ep, Policies: policies }, net.Type);
  await ctx.changeElems(elems(added), elems(removed));
  await ctx.store.put('endpoints', ep.Id, updated);
  ctx.endpoints.set(ep.Id, updated);
  if (updated.NamespaceId) await applyRoutes(ctx, ep, updated);
  return updated;
}

export async function deleteEndpoint(ctx: Ctx, ref: string): Promise<void> {
  const ep = ctx.endpoint(ref);
  await removeBackendsFrom(ctx, ep.Id);
  if (ep.NamespaceId) await detachEndpoint(ctx, ep.Id);
  await forgetEndpoint(ctx, ep);
}

/** The endpoint's elements, record, address and etc files; its link is gone already (or never was). */
export async function forgetEndpoint(ctx: Ctx, ep: Endpoint): Promise<void> {
  const net = ctx.networks.get(ep.NetworkId)!;
  await ctx.changeElems([], endpointElems(ep, net.Type));
  await ctx.store.remove('endpoints', ep.Id);
  ctx.endpoints.delete(ep.Id);
  await freeAddress(ctx, ep);
  rmSync(join(ctx.runDir, 'etc', ep.Id), { recursive: true, force: true }); // two small files: no pool round trips
}

async function freeAddress(ctx: Ctx, ep: Endpoint): Promise<void> {
  const cur = ctx.ipam.get(ep.NetworkId);
  if (!cur || cur.allocated[ep.IpAddress] !== ep.Id) return;
  const next = release(cur, ep.IpAddress);
  await ctx.store.put('ipam', ep.NetworkId, next);
  ctx.ipam.set(ep.NetworkId, next);
}
