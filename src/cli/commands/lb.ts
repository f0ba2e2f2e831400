// `silo lb create|ls|inspect|rm|backend add|backend remove`: the network service's load balancers (docs/api.md).

import type { LoadBalancer } from '../../api/native/wire.js';
import { call, enc } from '../client.js';
import { DaemonError, eachTarget } from '../errors.js';
import { buildLoadBalancerRequest, type LbCreateFlags } from '../flags.js';
import { inspectTargets, printRows, shortId } from '../format.js';

const out = (s: string) => process.stdout.write(`${s}\n`);

/** An id as the daemon knows it; the CLI also takes a load balancer's name or a unique id prefix. */
export async function resolveLb(ref: string): Promise<LoadBalancer> {
  try {
    return await call<LoadBalancer>('GET', `/v1/loadbalancers/${enc(ref)}`);
  } catch (e) {
    if (!(e instanceof DaemonError && e.status === 404)) throw e;
    const list = await call<LoadBalancer[]>('GET', '/v1/loadbalancers');
    const byName = list.filter((l) => l.Name === ref);
    const hits = byName.length ? byName : list.filter((l) => ref.length > 0 && l.Id.startsWith(ref));
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) throw new DaemonError(`load balancer '${ref}' is ambiguous: ${hits.length} match`, 400);
    throw e;
  }
}

export async function create(backends: string[], f: LbCreateFlags): Promise<number> {
  const lb = await call<LoadBalancer>('POST', '/v1/loadbalancers', buildLoadBalancerRequest(backends, f));
  out(lb.Id);
  return 0;
}

/** "80->8080/tcp" per mapping, "(sticky)" for SourceIP distribution. */
export function lbPorts(lb: Pick<LoadBalancer, 'PortMappings'>): string {
  return (lb.PortMappings ?? [])
    .map((p) => `${p.ExternalPort}->${p.InternalPort}/${p.Protocol}${p.DistributionType === 'SourceIP' ? ' (sticky)' : ''}`)
    .join(', ');
}

export function lbRow(lb: LoadBalancer, full = false) {
  return {
    ID: full ? lb.Id : shortId(lb.Id),
    Name: lb.Name ?? '',
    VIPs: (lb.FrontendVIPs ?? []).length ? lb.FrontendVIPs.join(',') : '*',
    Ports: lbPorts(lb),
    Backends: (lb.Endpoints ?? []).length,
    CreatedAt: lb.CreatedAt,
  };
}

export async function ls(f: { quiet?: boolean; trunc?: boolean; format?: string }): Promise<number> {
  const list = await call<LoadBalancer[]>('GET', '/v1/loadbalancers');
  list.sort((a, b) => Date.parse(b.CreatedAt) - Date.parse(a.CreatedAt));
  const rows = list.map((l) => lbRow(l, f.trunc === false));
  printRows(rows, f, ['ID', 'NAME', 'VIPS', 'PORTS', 'BACKENDS'], (r) => [r.ID, r.Name, r.VIPs, r.Ports, String(r.Backends)]);
  return 0;
}

export function inspect(refs: string[], f: { format?: string }): Promise<number> {
  return inspectTargets(refs, resolveLb, f.format);
}

export function rm(refs: string[]): Promise<number> {
  return eachTarget(refs, async (r) => {
    const lb = await resolveLb(r);
    await call('DELETE', `/v1/loadbalancers/${enc(lb.Id)}`);
    out(r);
  });
}

export async function backends(op: 'Add' | 'Remove', ref: string, refs: string[]): Promise<number> {
  const lb = await resolveLb(ref);
  await call<LoadBalancer>('POST', `/v1/loadbalancers/${enc(lb.Id)}/backends`, { [op]: refs });
  return 0;
}
