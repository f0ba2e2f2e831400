// Pure translation of Silo objects into nft set/map elements, and of element changes into `nft -f` batch lines.
// Each function returns `Elem`s: which set and which element text; the caller adds or deletes them.

import { invalid } from '../../common/errors.js';
import { family, normalCidr, subnet6 } from '../dualstack.js';
import type { AclSettings, Endpoint, LbPortMapping, LoadBalancer, Network, PortMappingSettings } from '../types.js';
import { lbChainName, lbMapName } from './ruleset.js';

export interface Elem {
  set: string;
  /** Key, or "key : value" for maps. */
  text: string;
}

export function elemKey(e: Elem): string {
  return `${e.set}\u0000${e.text}`;
}

/** `add element inet T set { e1, e2 }` lines, one per set, for a batch. */
export function elementLines(op: 'add' | 'delete', table: string, elems: Elem[]): string {
  const bySet = new Map<string, string[]>();
  for (const e of elems) {
    const text = op === 'delete' ? e.text.split(' : ')[0] : e.text;
    bySet.set(e.set, [...(bySet.get(e.set) ?? []), text]);
  }
  let out = '';
  for (const [set, texts] of bySet) out += `${op} element inet ${table} ${set} { ${texts.join(', ')} }\n`;
  return out;
}

const q = (ifname: string) => `"${ifname}"`;

export function subnetOf(n: Network): string {
  return n.Ipams[0].Subnets[0].IpAddressPrefix;
}

/** A network's membership in the fixed sets: its bridge, its same-bridge pair, its type's set. */
export function networkElems(n: Network): Elem[] {
  const out: Elem[] = [
    { set: 'bridges', text: q(n.Bridge) },
    { set: 'bridge_pairs', text: `${q(n.Bridge)} . ${q(n.Bridge)}` },
  ];
  if (n.Type === 'internal') out.push({ set: 'internal_bridges', text: q(n.Bridge) });
  if (n.Type === 'nat') {
    const s6 = subnet6(n)?.IpAddressPrefix;
    out.push({ set: 'nat_subnets', text: subnetOf(n) });
    if (s6) out.push({ set: 'nat6_subnets', text: s6 });
    for (const p of n.Policies) {
      if (p.Type === 'OutBoundNAT') out.push(...exceptionElems([subnetOf(n), s6], p.Settings.Exceptions ?? []));
    }
  }
  return out;
}

/** Exceptions of each family from the source of that family (IPv4 first, then IPv6 if there is one). */
function exceptionElems([src4, src6]: [string, string | undefined], exceptions: string[]): Elem[] {
  return exceptions.flatMap((x) => {
    const v6 = family(x) === 6;
    if (v6 && !src6) return [];
    return [{ set: v6 ? 'nat6_exceptions' : 'nat_exceptions', text: `${v6 ? src6 : src4} . ${normalCidr(x)}` }];
  });
}

/**
 * A port mapping's DNAT entries. On every address (no HostIp) it reaches the container on both families when it has
 * an IPv6 address; "::" is every IPv6 address; a host address of one family maps to the container's of that family.
 */
export function portMappingElems(ep: Pick<Endpoint, 'IpAddress' | 'Ipv6Address'>, pm: PortMappingSettings): Elem[] {
  const to = (ip: string) => `${ip} . ${pm.InternalPort}`;
  const any = (v6: boolean) => ({ set: v6 ? 'portmap6_any' : 'portmap_any', text: `${pm.Protocol} . ${pm.ExternalPort} : ${to(v6 ? ep.Ipv6Address! : ep.IpAddress)}` });
  if (!pm.HostIp || pm.HostIp === '0.0.0.0') return [any(false), ...(ep.Ipv6Address ? [any(true)] : [])];
  if (family(pm.HostIp) === 4) return [{ set: 'portmap_ip', text: `${pm.HostIp} . ${pm.Protocol} . ${pm.ExternalPort} : ${to(ep.IpAddress)}` }];
  if (!ep.Ipv6Address) return []; // refused before it gets here (endpoints.ts); nothing to reach
  if (pm.HostIp === '::') return [any(true)];
  return [{ set: 'portmap6_ip', text: `${pm.HostIp} . ${pm.Protocol} . ${pm.ExternalPort} : ${to(ep.Ipv6Address)}` }];
}

const PROTO_NAMES: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, sctp: 132 };

function list(s: string | undefined): string[] {
  return (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0 && x !== '*');
}

function protoRange(p: string): string {
  const n = PROTO_NAMES[p.toLowerCase()] ?? Number(p);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw invalid(`ACL: unknown protocol ${p}`);
  return String(n);
}

function portRange(p: string): string {
  const m = /^(\d+)(?:-(\d+))?$/.exec(p);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m && m[2] !== undefined ? Number(m[2]) : lo;
  if (!m || lo > 65535 || hi > 65535 || lo > hi) throw invalid(`ACL: bad port or range ${p}`);
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

/**
 * An ACL as the cartesian product of its lists; local/remote are from the endpoint's point of view. Addresses pair
 * within a family: by default the endpoint's own addresses and any remote of each family it has, so an ACL holds on
 * IPv6 as on IPv4.
 */
export function aclElems(ep: Pick<Endpoint, 'IpAddress' | 'Ipv6Address'>, acl: AclSettings): Elem[] {
  const dir = `${acl.Direction === 'In' ? 'in' : 'out'}_${acl.Action === 'Allow' ? 'allow' : 'block'}`;
  const locals = list(acl.LocalAddresses).map((a) => normalCidr(a));
  const remotes = list(acl.RemoteAddresses).map((a) => normalCidr(a));
  const protos = list(acl.Protocols).map(protoRange);
  const lports = list(acl.LocalPorts).map(portRange);
  const rports = list(acl.RemotePorts).map(portRange);
  const out: Elem[] = [];
  const own = [ep.IpAddress, ...(ep.Ipv6Address ? [ep.Ipv6Address] : [])];
  for (const l of locals.length ? locals : own)
    for (const r of remotes.length ? remotes : [family(l) === 6 ? '::/0' : '0.0.0.0/0']) {
      if (family(l) !== family(r)) continue;
      const set = `acl${family(l) === 6 ? '6' : ''}_${dir}`;
      for (const p of protos.length ? protos : ['0-255'])
        for (const lp of lports.length ? lports : ['0-65535'])
          for (const rp of rports.length ? rports : ['0-65535'])
            out.push({ set, text: `${l} . ${r} . ${p} . ${lp} . ${rp}` });
    }
  return out;
}

export function outboundNatElems(ep: Pick<Endpoint, 'IpAddress' | 'Ipv6Address'>, exceptions: string[]): Elem[] {
  return exceptionElems([ep.IpAddress, ep.Ipv6Address], exceptions);
}

/** Every element an endpoint's policies put in the table (Route policies live in the namespace, not in nft). */
export function endpointElems(ep: Endpoint, networkType: Network['Type']): Elem[] {
  const out: Elem[] = [];
  for (const p of ep.Policies) {
    if (p.Type === 'PortMapping') out.push(...portMappingElems(ep, p.Settings));
    else if (p.Type === 'ACL') out.push(...aclElems(ep, p.Settings));
    else if (p.Type === 'OutBoundNAT' && networkType === 'nat') out.push(...outboundNatElems(ep, p.Settings.Exceptions ?? []));
  }
  return out;
}

/** The VIP (or any-local-address) entries that send a frontend to the LB's chain for that port mapping. */
export function lbFrontendElems(lb: Pick<LoadBalancer, 'Id' | 'FrontendVIPs'> & { PortMappings: LbPortMapping[] }): Elem[] {
  const out: Elem[] = [];
  lb.PortMappings.forEach((pm, i) => {
    const verdict = `goto ${lbChainName(lb.Id, i)}`;
    if (lb.FrontendVIPs.length === 0) out.push({ set: 'lb_ports', text: `${pm.Protocol} . ${pm.ExternalPort} : ${verdict}` });
    for (const vip of lb.FrontendVIPs) out.push({ set: 'lb_vips', text: `${vip} . ${pm.Protocol} . ${pm.ExternalPort} : ${verdict}` });
  });
  return out;
}

/** Slot map changes: `slots` indices whose backend changed, given the new slot → ip table (undefined = empty). */
export function lbSlotLines(table: string, lbId: string, changed: number[], slots: (string | undefined)[], had: (string | undefined)[]): string {
  const map = lbMapName(lbId);
  const del = changed.filter((i) => had[i] !== undefined).map(String);
  const add = changed.filter((i) => slots[i] !== undefined).map((i) => `${i} : ${slots[i]}`);
  let out = '';
  if (del.length) out += `delete element inet ${table} ${map} { ${del.join(', ')} }\n`;
  if (add.length) out += `add element inet ${table} ${map} { ${add.join(', ')} }\n`;
  return out;
}
