// Endpoint and network policies: validation into one canonical form (so "Remove" can find a policy by value) and
// the port-mapping conflict rules.

import { invalid } from '../common/errors.js';
import { isIp, parseCidr } from './ipv4.js';
import { family, isAnyIp, normalCidr } from './dualstack.js';
import { formatIp6, parseIp6 } from './ipv6.js';
import { aclElems } from './nft/elements.js';
import type { EndpointPolicy, NetworkPolicy, PortMappingSettings, Protocol } from './types.js';

function port(v: unknown, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw invalid(`${what} must be a port 1-65535, got ${String(v)}`);
  return n;
}

function protocol(v: unknown): Protocol {
  const p = String(v ?? 'tcp').toLowerCase();
  if (p === 'tcp' || p === '6') return 'tcp';
  if (p === 'udp' || p === '17') return 'udp';
  throw invalid(`protocol must be tcp or udp, got ${String(v)}`);
}

function cidrs(list: unknown, what: string): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw invalid(`${what} must be a list`);
  for (const x of list) normalCidr(String(x));
  return list.map(String);
}

export function normalizeEndpointPolicy(p: EndpointPolicy): EndpointPolicy {
  const s = (p?.Settings ?? {}) as unknown as Record<string, unknown>;
  switch (p?.Type) {
    case 'PortMapping': {
      let hostIp = s.HostIp === undefined || s.HostIp === '' ? undefined : String(s.HostIp);
      if (hostIp !== undefined && !isAnyIp(hostIp)) throw invalid(`PortMapping HostIp is not an IP address: ${hostIp}`);
      if (hostIp !== undefined && family(hostIp) === 6) hostIp = formatIp6(parseIp6(hostIp));
      const settings: PortMappingSettings = {
        Protocol: protocol(s.Protocol),
        InternalPort: port(s.InternalPort, 'InternalPort'),
        // 0 asks the network service to pick a free host port (hostports.ts), as HNS does.
        ExternalPort: s.ExternalPort === 0 ? 0 : port(s.ExternalPort, 'ExternalPort'),
      };
      if (hostIp !== undefined && hostIp !== '0.0.0.0') settings.HostIp = hostIp;
      return { Type: 'PortMapping', Settings: settings };
    }
    case 'ACL': {
      if (s.Action !== 'Allow' && s.Action !== 'Block') throw invalid('ACL Action must be Allow or Block');
      if (s.Direction !== 'In' && s.Direction !== 'Out') throw invalid('ACL Direction must be In or Out');
      const settings = { Action: s.Action, Direction: s.Direction } as EndpointPolicy['Settings'] & Record<string, unknown>;
      for (const k of ['Protocols', 'LocalAddresses', 'RemoteAddresses', 'LocalPorts', 'RemotePorts']) {
        if (s[k] !== undefined && s[k] !== '') settings[k] = String(s[k]);
      }
      if (s.Priority !== undefined) settings.Priority = Number(s.Priority);
      const acl = { Type: 'ACL', Settings: settings } as EndpointPolicy;
      aclElems({ IpAddress: '0.0.0.0' }, acl.Settings as never); // throws on a bad protocol, port or address
      return acl;
    }
    case 'OutBoundNAT':
      return { Type: 'OutBoundNAT', Settings: { Exceptions: cidrs(s.Exceptions, 'OutBoundNAT Exceptions') } };
    case 'Route': {
      parseCidr(String(s.DestinationPrefix), false);
      if (!isIp(String(s.NextHop))) throw invalid(`Route NextHop is not an IPv4 address: ${String(s.NextHop)}`);
      return { Type: 'Route', Settings: { DestinationPrefix: String(s.DestinationPrefix), NextHop: String(s.NextHop) } };
    }
    default:
      throw invalid(`unsupported endpoint policy type: ${String((p as { Type?: unknown })?.Type)}`);
  }
}

export function normalizeNetworkPolicy(p: NetworkPolicy): NetworkPolicy {
  if (p?.Type !== 'OutBoundNAT') throw invalid(`unsupported network policy type: ${String((p as { Type?: unknown })?.Type)}`);
  return { Type: 'OutBoundNAT', Settings: { Exceptions: cidrs(p.Settings?.Exceptions, 'OutBoundNAT Exceptions') } };
}

/** Canonical text of a policy, for equality. */
export function policyKey(p: EndpointPolicy): string {
  const s = p.Settings as unknown as Record<string, unknown>;
  return JSON.stringify([p.Type, Object.keys(s).sort().map((k) => [k, s[k]])]);
}

/** Two port mappings collide when protocol and port match and their host addresses overlap ("any" overlaps all; "::"
 *  every IPv6 address). */
export function portsCollide(a: { Protocol: string; ExternalPort: number; HostIp?: string }, b: { Protocol: string; ExternalPort: number; HostIp?: string }): boolean {
  // A port not yet picked (0) collides with nothing: the pick avoids every mapped port.
  if (a.Protocol !== b.Protocol || a.ExternalPort !== b.ExternalPort || a.ExternalPort === 0) return false;
  if (a.HostIp === undefined || b.HostIp === undefined || a.HostIp === b.HostIp) return true;
  return (a.HostIp === '::' && family(b.HostIp) === 6) || (b.HostIp === '::' && family(a.HostIp) === 6);
}
