// `silo network create|ls|inspect|rm|connect|disconnect`: the network service's networks (HCN-shaped, docs/api.md).

import type { Network } from '../../api/native/wire.js';
import { call, enc } from '../client.js';
import { eachTarget } from '../errors.js';
import { buildNetworkRequest, parseIPv4, type NetworkCreateFlags } from '../flags.js';
import { inspectTargets, printRows, shortId } from '../format.js';

const out = (s: string) => process.stdout.write(`${s}\n`);

export async function create(name: string, f: NetworkCreateFlags): Promise<number> {
  const n = await call<Network>('POST', '/v1/networks', buildNetworkRequest(name, f));
  out(n.Id);
  return 0;
}

/** One row of `network ls` (also its --format json / template fields). */
export function networkRow(n: Network, full = false) {
  const subnets = (n.Ipams ?? []).flatMap((i) => i.Subnets ?? []);
  return {
    ID: full ? n.Id : shortId(n.Id),
    Name: n.Name,
    Driver: n.Type,
    Subnet: subnets.map((s) => s.IpAddressPrefix).join(','),
    Gateway: subnets.map((s) => s.GatewayAddress ?? '').filter(Boolean).join(','),
    Interface: n.Interface ?? '',
    Bridge: n.Bridge ?? '',
    CreatedAt: n.CreatedAt,
  };
}

export async function ls(f: { quiet?: boolean; trunc?: boolean; format?: string }): Promise<number> {
  const list = await call<Network[]>('GET', '/v1/networks');
  list.sort((a, b) => a.Name.localeCompare(b.Name));
  const rows = list.map((n) => networkRow(n, f.trunc === false));
  printRows(rows, f, ['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET'], (r) => [r.ID, r.Name, r.Driver, r.Subnet]);
  return 0;
}

export function inspect(refs: string[], f: { format?: string }): Promise<number> {
  return inspectTargets(refs, (r) => call('GET', `/v1/networks/${enc(r)}`), f.format);
}

export function rm(refs: string[]): Promise<number> {
  return eachTarget(refs, async (r) => {
    await call('DELETE', `/v1/networks/${enc(r)}`);
    out(r);
  });
}

export async function connect(network: string, container: string, f: { ip?: string; alias?: string[] }): Promise<number> {
  const body: { Network: string; IpAddress?: string; Aliases?: string[] } = { Network: network };
  if (f.ip !== undefined) body.IpAddress = parseIPv4(f.ip, '--ip address');
  if (f.alias?.length) body.Aliases = f.alias;
  await call('POST', `/v1/systems/${enc(container)}/networks`, body);
  return 0;
}

export async function disconnect(network: string, container: string): Promise<number> {
  await call('DELETE', `/v1/systems/${enc(container)}/networks/${enc(network)}`);
  return 0;
}
