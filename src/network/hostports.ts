// Host ports for port mappings that name none (ExternalPort 0), picked by the network service as HNS picks them: from
// the kernel's ephemeral range, a port that no endpoint or load balancer maps and no host socket holds. The choice is
// written in the endpoint's record, so it survives a daemon restart like any other mapping.

import { readFile } from 'node:fs/promises';
import { noCapacity } from '../common/errors.js';
import type { Ctx } from './context.js';
import type { EndpointPolicy, Protocol } from './types.js';

/** Ports of host sockets in use for `proto` (listening TCP sockets, bound UDP ones), from the kernel's tables. */
async function hostSockets(proto: Protocol): Promise<Set<number>> {
  const used = new Set<number>();
  for (const f of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4) continue;
      // TCP: only listeners (state 0A) hold a port against DNAT; UDP: any bound socket.
      if (proto === 'tcp' && cols[3] !== '0A') continue;
      used.add(parseInt(cols[1].split(':')[1], 16));
    }
  }
  return used;
}

async function ephemeralRange(): Promise<[number, number]> {
  const text = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const [lo, hi] = text.trim().split(/\s+/).map(Number);
  return Number.isInteger(lo) && Number.isInteger(hi) && lo > 0 && hi >= lo && hi <= 65535 ? [lo, hi] : [49153, 65535];
}

/** Ports mapped on the host for `proto`, by any endpoint (but `self` when its policies are being replaced) or VIP-less LB. */
function mappedPorts(ctx: Ctx, proto: Protocol, skip?: string): Set<number> {
  const used = new Set<number>();
  for (const e of ctx.endpoints.values()) {
    if (e.Id === skip) continue;
    for (const p of e.Policies) if (p.Type === 'PortMapping' && p.Settings.Protocol === proto) used.add(p.Settings.ExternalPort);
  }
  for (const lb of ctx.lbs.values()) {
    if (lb.FrontendVIPs.length === 0) for (const pm of lb.PortMappings) if (pm.Protocol === proto) used.add(pm.ExternalPort);
  }
  return used;
}

/**
 * The policies with every PortMapping's ExternalPort 0 replaced by a free host port. Allocation runs under the
 * network lock; a cursor moves on after each pick, so a port just released is not handed out again at once.
 */
export async function assignHostPorts(ctx: Ctx, policies: EndpointPolicy[], skip?: string): Promise<EndpointPolicy[]> {
  if (!policies.some((p) => p.Type === 'PortMapping' && p.Settings.ExternalPort === 0)) return policies;
  const [lo, hi] = await ephemeralRange();
  const taken = new Map<Protocol, Set<number>>();
  const takenFor = async (proto: Protocol) => {
    let s = taken.get(proto);
    if (!s) {
      s = new Set([...mappedPorts(ctx, proto, skip), ...(await hostSockets(proto))]);
      for (const p of policies) if (p.Type === 'PortMapping' && p.Settings.Protocol === proto) s.add(p.Settings.ExternalPort);
      taken.set(proto, s);
    }
    return s;
  };
  const out: EndpointPolicy[] = [];
  for (const p of policies) {
    if (p.Type !== 'PortMapping' || p.Settings.ExternalPort !== 0) {
      out.push(p);
      continue;
    }
    const used = await takenFor(p.Settings.Protocol);
    const size = hi - lo + 1;
    let port = 0;
    for (let i = 0; i < size; i++) {
      const cand = lo + ((ctx.hostPortCursor + i) % size);
      if (!used.has(cand)) {
        port = cand;
        ctx.hostPortCursor = (cand - lo + 1) % size;
        break;
      }
    }
    if (!port) throw noCapacity(`no free host port for ${p.Settings.Protocol} in ${lo}-${hi}`);
    used.add(port);
    out.push({ Type: 'PortMapping', Settings: { ...p.Settings, ExternalPort: port } });
  }
  return out;
}
