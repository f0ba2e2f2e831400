// Networks through the network service, in docker's shapes. Silo's nat and internal networks are Linux bridges
// (docker's "bridge" driver); "bridge" and "default" name Silo's default nat network.

import type { FastifyInstance } from 'fastify';
import { isSiloError } from '../../common/errors.js';
import type { Network, NetworkType } from '../../network/types.js';
import type { Ctx } from './ctx.js';
import { dockerConflict, dockerInvalid, dockerNotFound } from './errors.js';
import { filters, labelMatch, sendJson, type Query } from './util.js';
import * as S from './schemas.js';
import { parseBody } from './schemas.js';

type P = { Params: { id: string }; Querystring: Query };
const DEFAULT = 'nat';
/** Driver options Silo acts on; any other is refused rather than stored and ignored. */
const KNOWN_OPTIONS = new Set(['parent', 'com.docker.network.bridge.parent']);

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
    containers[rec.Id] = { Name: rec.Name, EndpointID: ep.Id, MacAddress: ep.MacAddress, IPv4Address: `${ep.IpAddress}/${ep.PrefixLength}`, IPv6Address: '' };
  }
  return {
    Name: n.Name,
    Id: n.Id,
    Created: n.CreatedAt,
    Scope: 'local',
    Driver: driverOf(n.Type),
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: n.Ipams.flatMap((i) => i.Subnets.map((s) => ({ Subnet: s.IpAddressPrefix, ...(s.GatewayAddress ? { Gateway: s.GatewayAddress } : {}) }))) },
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
    const f = filters(req.query);
    let list = net().listNetworks();
    const names = f.get('name');
    if (names) list = list.filter((n) => names.some((v) => n.Name.includes(v)));
    const ids = f.get('id');
    if (ids) list = list.filter((n) => ids.some((v) => n.Id.startsWith(v)));
    const drv = f.get('driver');
    if (drv) list = list.filter((n) => drv.includes(driverOf(n.Type)));
    const labels = f.get('label');
    if (labels) list = list.filter((n) => labelMatch(n.Labels, labels));
    return sendJson(reply, 200, list.map((n) => networkJson(x, n)));
  });

  app.get<P>('/networks/:id', async (req, reply) => sendJson(reply, 200, networkJson(x, networkOf(x, req.params.id))));

  app.post('/networks/create', async (req, reply) => {
    const b = parseBody(S.NetworkCreate, req.body);
    if (!b.Name) throw dockerInvalid('network name is required');
    if (net().listNetworks().some((n) => n.Name === b.Name)) throw dockerConflict(`network with name ${b.Name} already exists`);
    const driver = String(b.Driver || 'bridge');
    let type: NetworkType;
    if (driver === 'bridge' || driver === 'nat') type = b.Internal ? 'internal' : 'nat';
    else if (driver === 'l2bridge') type = 'l2bridge';
    else throw dockerInvalid(`plugin "${driver}" not found: Silo's network drivers are bridge (nat, internal) and l2bridge`);
    if (b.EnableIPv6) throw dockerInvalid('IPv6 networks are not supported by Silo');
    const subnets = ((b.IPAM?.Config ?? []) as Record<string, string>[]).filter((c) => c.Subnet).map((c) => ({ IpAddressPrefix: c.Subnet, ...(c.Gateway ? { GatewayAddress: c.Gateway } : {}) }));
    for (const k of Object.keys(b.Options ?? {})) if (!KNOWN_OPTIONS.has(k)) throw dockerInvalid(`network driver option ${k} is not supported by Silo`);
    const parent = b.Options?.parent ?? b.Options?.['com.docker.network.bridge.parent'];
    const n = await net().createNetwork({
      Name: String(b.Name),
      Type: type,
      ...(subnets.length ? { Subnets: subnets } : {}),
      ...(parent ? { Interface: String(parent) } : {}),
      ...(b.Labels ? { Labels: b.Labels } : {}),
      ...(b.Options ? { Options: b.Options } : {}),
    });
    return sendJson(reply, 201, { Id: n.Id, Warning: '' });
  });

  app.delete<P>('/networks/:id', async (req, reply) => {
    const n = networkOf(x, req.params.id);
    const users = x.svc.network.listEndpoints(n.Id).length;
    if (users) throw dockerConflict(`error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
    await net().deleteNetwork(n.Id);
    return reply.status(204).send();
  });

  app.post<P>('/networks/:id/connect', async (req, reply) => {
    const n = networkOf(x, req.params.id);
    const b = parseBody(S.NetworkConnect, req.body);
    const r = x.svc.compute.get(String(b.Container ?? ''));
    const ec = b.EndpointConfig ?? {};
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

  app.post('/networks/prune', async (_req, reply) => {
    const deleted: string[] = [];
    for (const n of net().listNetworks()) {
      if (n.Name === DEFAULT || net().listEndpoints(n.Id).length) continue;
      await net().deleteNetwork(n.Id).then(() => deleted.push(n.Name), () => {});
    }
    return sendJson(reply, 200, { NetworksDeleted: deleted.length ? deleted : null });
  });
}
