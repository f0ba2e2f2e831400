// Networks through the network service, in docker's shapes. Silo's nat and internal networks are Linux bridges
// (docker's "bridge" driver); "bridge" and "default" name Silo's default nat network.

import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { isSiloError } from '../../common/errors.js';
import type { Network, NetworkType, Subnet } from '../../network/types.js';
import type { Ctx } from './ctx.js';
import { DockerError, dockerConflict, dockerInvalid, dockerNotFound } from './errors.js';
import { boolFilter, dockerNetworkName as dockerName, filters, labelMatch, labelsAndUntil, sendJson, type Query } from './util.js';
import * as S from './schemas.js';
import { parseBody } from './schemas.js';

type P = { Params: { id: string }; Querystring: Query };
/** Why --ip6 is refused (dualstack.ts: an endpoint's IPv6 address is its IPv4 host part on the IPv6 prefix). */
export const IP6_FIXED = '--ip6 is not supported by Silo: a container\'s IPv6 address follows its IPv4 address (the IPv6 prefix plus the IPv4 host part); give --ip instead';
const DEFAULT = 'nat';
/** Driver options Silo acts on; any other is refused rather than stored and ignored. */
const KNOWN_OPTIONS = new Set(['parent', 'com.docker.network.bridge.parent']);

/** docker's three predefined networks: Silo's default nat network is docker's "bridge"; "host" and "none" are not
 *  networks of the network service but namespace modes (the host's, an empty one), shown as dockerd shows them. */
const PREDEFINED_MODES = { host: 'host', none: 'null' } as const;
const modeId = (name: string) => createHash('sha256').update(`silo-network-mode:${name}`).digest('hex');

function modeNetworkJson(name: keyof typeof PREDEFINED_MODES, x: Ctx): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const r of x.svc.compute.list(true)) {
    const ns = r.Document.Container.Namespaces?.Network;
    const inMode = name === 'host' ? ns?.Mode === 'host' : r.Document.Container.Networking?.Network === 'none' && !ns;
    if (inMode) containers[r.Id] = { Name: r.Name, EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' };
  }
  return {
    Name: name,
    Id: modeId(name),
    Created: '0001-01-01T00:00:00Z',
    Scope: 'local',
    Driver: PREDEFINED_MODES[name],
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: null },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: {},
    Labels: {},
  };
}

const ipamConfig = (s: Subnet) => ({
  Subnet: s.IpAddressPrefix,
  ...(s.GatewayAddress ? { Gateway: s.GatewayAddress } : {}),
  ...(s.IpRange ? { IPRange: s.IpRange } : {}),
  ...(s.Reserved ? { AuxiliaryAddresses: s.Reserved } : {}),
});

function predefinedMode(ref: string): keyof typeof PREDEFINED_MODES | undefined {
  for (const name of Object.keys(PREDEFINED_MODES) as (keyof typeof PREDEFINED_MODES)[]) if (ref === name || (ref.length >= 3 && modeId(name).startsWith(ref))) return name;
  return undefined;
}

export function networkOf(x: Ctx, ref: string): Network {
  try {
    return x.svc.network.getNetwork(ref === 'bridge' || ref === 'default' ? DEFAULT : ref);
  } catch (e) {
    if (isSiloError(e) && e.class === 'NotFound') throw dockerNotFound(`network ${ref} not found`);
    throw e;
  }
}

const driverOf = (t: NetworkType) => (t === 'l2bridge' ? 'l2bridge' : 'bridge');

function networkJson(x: Ctx, n: Network): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const ep of x.svc.network.listEndpoints(n.Id)) {
    const rec = x.svc.compute.list(true).find((r) => r.Document.Container.Networking?.Endpoints?.includes(ep.Id));
    if (!rec) continue;
    const v6 = ep.Ipv6Address ? `${ep.Ipv6Address}/${ep.Ipv6PrefixLength}` : '';
    containers[rec.Id] = { Name: rec.Name, EndpointID: ep.Id, MacAddress: ep.MacAddress, IPv4Address: `${ep.IpAddress}/${ep.PrefixLength}`, IPv6Address: v6 };
  }
  return {
    Name: dockerName(n),
    Id: n.Id,
    Created: n.CreatedAt,
    Scope: 'local',
    Driver: driverOf(n.Type),
    EnableIPv4: true,
    EnableIPv6: n.Ipams[0].Subnets.some((s) => s.IpAddressPrefix.includes(':')),
    IPAM: { Driver: 'default', Options: null, Config: n.Ipams.flatMap((i) => i.Subnets.map(ipamConfig)) },
    Internal: n.Type === 'internal',
    Attachable: true,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: n.Options ?? {},
    Labels: n.Labels ?? {},
  };
}

export function networkRoutes(app: FastifyInstance, x: Ctx): void {
  const net = () => x.svc.network;

  app.get<{ Querystring: Query }>('/networks', async (req, reply) => {
    const f = filters(req.query, ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type']);
    const dangling = boolFilter(f, 'dangling');
    let list = [...net().listNetworks().map((n) => networkJson(x, n)), ...(['host', 'none'] as const).map((m) => modeNetworkJson(m, x))];
    const str = (n: Record<string, unknown>, k: string) => String(n[k]);
    const names = f.get('name');
    if (names) list = list.filter((n) => names.some((v) => str(n, 'Name').includes(v)));
    const ids = f.get('id');
    if (ids) list = list.filter((n) => ids.some((v) => str(n, 'Id').startsWith(v)));
    const drv = f.get('driver');
    if (drv) list = list.filter((n) => drv.includes(str(n, 'Driver')));
    const labels = f.get('label');
    if (labels) list = list.filter((n) => labelMatch(n.Labels as Record<string, string>, labels));
    const type = f.get('type');
    const builtin = (n: Record<string, unknown>) => ['bridge', 'host', 'none'].includes(str(n, 'Name'));
    if (type) list = list.filter((n) => type.includes(builtin(n) ? 'builtin' : 'custom'));
    const scope = f.get('scope');
    if (scope) list = list.filter((n) => scope.includes(str(n, 'Scope')));
    // dangling: a network of the user's with no container on it (dockerd never counts the predefined ones).
    if (dangling !== undefined) {
      const unused = (n: Record<string, unknown>) => !builtin(n) && net().listEndpoints(str(n, 'Id')).length === 0;
      list = list.filter((n) => unused(n) === dangling);
    }
    return sendJson(reply, 200, list);
  });

  app.get<P>('/networks/:id', async (req, reply) => {
    const mode = predefinedMode(req.params.id);
    return sendJson(reply, 200, mode ? modeNetworkJson(mode, x) : networkJson(x, networkOf(x, req.params.id)));
  });

  app.post('/networks/create', async (req, reply) => {
    const b = parseBody(S.NetworkCreate, req.body);
    if (!b.Name) throw dockerInvalid('network name is required');
    if (['bridge', 'host', 'none', 'default', DEFAULT].includes(String(b.Name)) || net().listNetworks().some((n) => n.Name === b.Name)) {
      throw dockerConflict(`network with name ${b.Name} already exists`);
    }
    const driver = String(b.Driver || 'bridge');
    let type: NetworkType;
    if (driver === 'bridge' || driver === 'nat') type = b.Internal ? 'internal' : 'nat';
    else if (driver === 'l2bridge') type = 'l2bridge';
    else throw dockerInvalid(`plugin "${driver}" not found: Silo's network drivers are bridge (nat, internal) and l2bridge`);
    if (b.EnableIPv4 === false) throw dockerInvalid('IPv6-only networks are not supported by Silo: every network has an IPv4 subnet');
    const configs = (b.IPAM?.Config ?? []) as { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }[];
    // One subnet per family: IPv4, and IPv6 beside it on a dual-stack network (--ipv6).
    const v6 = (c: { Subnet?: string }) => !!c.Subnet?.includes(':');
    if (configs.filter(v6).length > 1 || configs.filter((c) => !v6(c)).length > 1) throw dockerInvalid('Silo networks have at most one IPv4 and one IPv6 subnet');
    if (configs.some(v6) && !b.EnableIPv6) throw dockerInvalid('an IPv6 subnet needs an IPv6 network: add --ipv6 (EnableIPv6)');
    if (configs.some((c) => !c.Subnet && (c.IPRange || c.Gateway || c.AuxiliaryAddresses))) throw dockerInvalid('an IP range, gateway or auxiliary address needs its subnet');
    const subnets = configs
      .filter((c) => c.Subnet)
      .map((c) => ({
        IpAddressPrefix: c.Subnet!,
        ...(c.Gateway ? { GatewayAddress: c.Gateway } : {}),
        ...(c.IPRange ? { IpRange: c.IPRange } : {}),
        ...(c.AuxiliaryAddresses && Object.keys(c.AuxiliaryAddresses).length ? { Reserved: c.AuxiliaryAddresses } : {}),
      }));
    for (const k of Object.keys(b.Options ?? {})) if (!KNOWN_OPTIONS.has(k)) throw dockerInvalid(`network driver option ${k} is not supported by Silo`);
    const parent = b.Options?.parent ?? b.Options?.['com.docker.network.bridge.parent'];
    const n = await net().createNetwork({
      Name: String(b.Name),
      Type: type,
      ...(subnets.length ? { Subnets: subnets } : {}),
      ...(parent ? { Interface: String(parent) } : {}),
      ...(b.Labels ? { Labels: b.Labels } : {}),
      ...(b.Options ? { Options: b.Options } : {}),
      ...(b.EnableIPv6 ? { EnableIpv6: true } : {}),
    });
    return sendJson(reply, 201, { Id: n.Id, Warning: '' });
  });

  app.delete<P>('/networks/:id', async (req, reply) => {
    const predefined = predefinedMode(req.params.id) ?? (['bridge', 'default', DEFAULT].includes(req.params.id) ? 'bridge' : undefined);
    if (predefined) throw new DockerError(403, `${predefined} is a pre-defined network and cannot be removed`);
    const n = networkOf(x, req.params.id);
    const users = x.svc.network.listEndpoints(n.Id).length;
    if (users) throw dockerConflict(`error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
    await net().deleteNetwork(n.Id);
    return reply.status(204).send();
  });

  app.post<P>('/networks/:id/connect', async (req, reply) => {
    if (predefinedMode(req.params.id)) throw new DockerError(400, `container cannot be disconnected from host network or connected to host network`);
    const n = networkOf(x, req.params.id);
    const b = parseBody(S.NetworkConnect, req.body);
    const r = x.svc.compute.get(String(b.Container ?? ''));
    const ec = b.EndpointConfig ?? {};
    if (ec.IPAMConfig?.IPv6Address) throw dockerInvalid(IP6_FIXED);
    await x.svc.compute.connect(r.Id, { Network: n.Id, ...(ec.IPAMConfig?.IPv4Address ? { IpAddress: ec.IPAMConfig.IPv4Address } : {}), ...(ec.Aliases?.length ? { Aliases: ec.Aliases } : {}) });
    const m = x.meta.get(r.Id);
    if (m) await x.meta.set(r.Id, { ...m, Networks: { ...m.Networks, [n.Name]: ec } });
    return reply.status(200).send();
  });

  app.post<P>('/networks/:id/disconnect', async (req, reply) => {
    const n = networkOf(x, req.params.id);
    const b = parseBody(S.NetworkDisconnect, req.body);
    const r = x.svc.compute.get(String(b.Container ?? ''));
    await x.svc.compute.disconnect(r.Id, n.Id);
    return reply.status(200).send();
  });

  app.post<{ Querystring: Query }>('/networks/prune', async (req, reply) => {
    const keep = labelsAndUntil(filters(req.query, ['label', 'label!', 'until']), (n: Network) => ({ labels: n.Labels, created: n.CreatedAt }));
    const deleted: string[] = [];
    for (const n of net().listNetworks()) {
      if (n.Name === DEFAULT || net().listEndpoints(n.Id).length || !keep(n)) continue;
      await net().deleteNetwork(n.Id).then(() => deleted.push(n.Name), () => {});
    }
    return sendJson(reply, 200, { NetworksDeleted: deleted.length ? deleted : null });
  });
}
