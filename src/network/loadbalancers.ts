// Load balancers: VIP:port (or any local address:port) → one of the backends, chosen per connection or by source IP.
// Creating one adds its slot map and chains; adding or removing a backend only rewrites the slots that move.

import { conflict, invalid } from '../common/errors.js';
import { newId } from '../common/ids.js';
import type { Ctx } from './context.js';
import { isIp } from './ipv4.js';
import { rebalance } from './lbslots.js';
import { elementLines, lbFrontendElems, lbSlotLines } from './nft/elements.js';
import { LB_SLOTS, lbObjects, lbObjectsDelete } from './nft/ruleset.js';
import { portsCollide } from './policies.js';
import type { CreateLoadBalancerRequest, LbPortMapping, LoadBalancer } from './types.js';

function normalizeMappings(req: CreateLoadBalancerRequest): LbPortMapping[] {
  if (!Array.isArray(req.PortMappings) || req.PortMappings.length === 0) throw invalid('a load balancer needs PortMappings');
  return req.PortMappings.map((pm) => {
    const proto = String(pm.Protocol ?? 'tcp').toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') throw invalid(`protocol must be tcp or udp, got ${proto}`);
    const ports = [pm.InternalPort, pm.ExternalPort].map(Number);
    if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw invalid('load balancer ports must be 1-65535');
    const dist = pm.DistributionType ?? 'PerConnection';
    if (dist !== 'PerConnection' && dist !== 'SourceIP') throw invalid(`bad DistributionType: ${String(dist)}`);
    return { Protocol: proto, InternalPort: ports[0], ExternalPort: ports[1], DistributionType: dist };
  });
}

function checkFrontendConflicts(ctx: Ctx, lb: LoadBalancer): void {
  const seen = new Set<string>();
  for (const pm of lb.PortMappings) {
    for (const vip of lb.FrontendVIPs.length ? lb.FrontendVIPs : ['*']) {
      const key = `${vip}/${pm.Protocol}/${pm.ExternalPort}`;
      if (seen.has(key)) throw invalid(`frontend ${key} appears twice`);
      seen.add(key);
    }
  }
  for (const other of ctx.lbs.values()) {
    for (const pm of lb.PortMappings) {
      for (const opm of other.PortMappings) {
        if (pm.Protocol !== opm.Protocol || pm.ExternalPort !== opm.ExternalPort) continue;
        const bothAny = lb.FrontendVIPs.length === 0 && other.FrontendVIPs.length === 0;
        if (bothAny || lb.FrontendVIPs.some((v) => other.FrontendVIPs.includes(v))) {
          throw conflict(`${pm.Protocol}/${pm.ExternalPort} is already a frontend of load balancer ${other.Name}`);
        }
      }
    }
  }
  if (lb.FrontendVIPs.length === 0) {
    for (const e of ctx.endpoints.values()) {
      for (const p of e.Policies) {
        if (p.Type === 'PortMapping' && lb.PortMappings.some((pm) => portsCollide(pm, p.Settings))) {
          throw conflict(`${p.Settings.Protocol}/${p.Settings.ExternalPort} is already mapped by ${e.Name}`);
        }
      }
    }
  }
}

function backendIds(ctx: Ctx, refs: string[]): string[] {
  return refs.map((r) => ctx.endpoint(r).Id);
}

/** nft lines that move the LB's slots to `backends`; updates ctx.lbSlots when `commit` runs. */
function slotChange(ctx: Ctx, lbId: string, backends: string[]): { lines: string; commit: () => void } {
  const had = ctx.lbSlots.get(lbId) ?? [];
  const { slots, changed } = rebalance(had, backends, LB_SLOTS);
  const ip = (id: string | undefined) => (id === undefined ? undefined : ctx.endpoints.get(id)?.IpAddress);
  const lines = lbSlotLines(ctx.nft.table, lbId, changed, slots.map(ip), had.map(ip));
  return { lines, commit: () => ctx.lbSlots.set(lbId, slots) };
}

export async function createLoadBalancer(ctx: Ctx, req: CreateLoadBalancerRequest): Promise<LoadBalancer> {
  const vips = (req.FrontendVIPs ?? []).map(String);
  for (const v of vips) if (!isIp(v)) throw invalid(`FrontendVIP is not an IPv4 address: ${v}`);
  const id = newId();
  const lb: LoadBalancer = {
    Id: id,
    Name: req.Name ? String(req.Name) : id.slice(0, 12),
    FrontendVIPs: vips,
    PortMappings: normalizeMappings(req),
    Endpoints: [...new Set(backendIds(ctx, req.Endpoints ?? []))],
    CreatedAt: new Date().toISOString(),
  };
  if ([...ctx.lbs.values()].some((x) => x.Name === lb.Name)) throw conflict(`load balancer ${lb.Name} already exists`);
  checkFrontendConflicts(ctx, lb);
  const slots = slotChange(ctx, id, lb.Endpoints);
  await ctx.nft.batch(lbObjects(ctx.nft.table, lb) + slots.lines + elementLines('add', ctx.nft.table, lbFrontendElems(lb)));
  slots.commit();
  try {
    await ctx.store.put('loadbalancers', id, lb);
  } catch (e) {
    await dropLbObjects(ctx, lb);
    throw e;
  }
  ctx.lbs.set(id, lb);
  return lb;
}

async function dropLbObjects(ctx: Ctx, lb: LoadBalancer): Promise<void> {
  await ctx.nft.batch(elementLines('delete', ctx.nft.table, lbFrontendElems(lb)) + lbObjectsDelete(ctx.nft.table, lb));
  ctx.lbSlots.delete(lb.Id);
}

export async function deleteLoadBalancer(ctx: Ctx, ref: string): Promise<void> {
  const lb = ctx.lb(ref);
  await dropLbObjects(ctx, lb);
  await ctx.store.remove('loadbalancers', lb.Id);
  ctx.lbs.delete(lb.Id);
}

async function setBackends(ctx: Ctx, lb: LoadBalancer, backends: string[]): Promise<LoadBalancer> {
  const change = slotChange(ctx, lb.Id, backends);
  const updated = { ...lb, Endpoints: backends };
  await ctx.nft.batch(change.lines);
  change.commit();
  await ctx.store.put('loadbalancers', lb.Id, updated);
  ctx.lbs.set(lb.Id, updated);
  return updated;
}

export async function addBackends(ctx: Ctx, ref: string, refs: string[]): Promise<LoadBalancer> {
  const lb = ctx.lb(ref);
  const add = backendIds(ctx, refs).filter((id) => !lb.Endpoints.includes(id));
  return add.length ? setBackends(ctx, lb, [...lb.Endpoints, ...new Set(add)]) : lb;
}

export async function removeBackends(ctx: Ctx, ref: string, refs: string[]): Promise<LoadBalancer> {
  const lb = ctx.lb(ref);
  const drop = new Set(backendIds(ctx, refs));
  const missing = [...drop].find((id) => !lb.Endpoints.includes(id));
  if (missing) throw invalid(`endpoint ${missing.slice(0, 12)} is not a backend of load balancer ${lb.Name}`);
  return setBackends(ctx, lb, lb.Endpoints.filter((id) => !drop.has(id)));
}

/** An endpoint going away leaves every load balancer first, so no slot points at a freed address. */
export async function removeBackendsFrom(ctx: Ctx, endpointId: string): Promise<void> {
  for (const lb of [...ctx.lbs.values()]) {
    if (lb.Endpoints.includes(endpointId)) await setBackends(ctx, lb, lb.Endpoints.filter((id) => id !== endpointId));
  }
}
