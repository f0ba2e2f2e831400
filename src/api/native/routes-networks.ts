// Networks, endpoints, namespaces and load balancers: HNS's objects, passed through to the network service.

import type { FastifyInstance } from 'fastify';
import { isSiloError } from '../../common/errors.js';
import type { Services } from '../../host/services.js';
import type { CreateLoadBalancerRequest, CreateNetworkRequest, ModifyEndpointRequest } from '../../network/types.js';
import * as S from './schemas.js';

type Ref = { Params: { ref: string } };

export function networkRoutes(app: FastifyInstance, svc: Services): void {
  const net = svc.network;
  const c = svc.compute;

  app.post('/v1/networks', { schema: { body: S.CreateNetwork } }, async (req, reply) => reply.status(201).send(await net.createNetwork(req.body as CreateNetworkRequest)));
  app.get('/v1/networks', async () => net.listNetworks());
  app.get<Ref>('/v1/networks/:ref', async (req) => net.getNetwork(req.params.ref));
  app.delete<Ref>('/v1/networks/:ref', async (req, reply) => {
    await net.deleteNetwork(req.params.ref);
    return reply.status(204).send();
  });

  app.get('/v1/endpoints', async (req) => net.listEndpoints((req.query as { network?: string }).network));
  app.get<Ref>('/v1/endpoints/:ref', async (req) => net.getEndpoint(req.params.ref));
  app.post<Ref>('/v1/endpoints/:ref/modify', { schema: { body: S.ModifyEndpoint } }, async (req) => net.modifyEndpoint(req.params.ref, req.body as ModifyEndpointRequest));
  app.get('/v1/namespaces', async () => net.listNamespaces());

  app.post<Ref>('/v1/systems/:ref/networks', { schema: { body: S.Connect } }, async (req, reply) => {
    const ep = await c.connect(req.params.ref, req.body as { Network: string; IpAddress?: string; Aliases?: string[] });
    return reply.status(201).send(net.getEndpoint(ep));
  });
  app.delete<{ Params: { ref: string; net: string } }>('/v1/systems/:ref/networks/:net', async (req, reply) => {
    await c.disconnect(req.params.ref, req.params.net);
    return reply.status(204).send();
  });

  // A backend may be named by endpoint id or by container: its first endpoint.
  const endpointOf = (ref: string): string => {
    try {
      return net.getEndpoint(ref).Id;
    } catch (e) {
      if (!isSiloError(e) || e.class !== 'NotFound') throw e;
      const eps = c.get(ref).Document.Container.Networking?.Endpoints ?? [];
      if (!eps.length) throw e;
      return eps[0];
    }
  };
  app.post('/v1/loadbalancers', { schema: { body: S.CreateLoadBalancer } }, async (req, reply) => {
    const b = req.body as CreateLoadBalancerRequest;
    return reply.status(201).send(await net.createLoadBalancer({ ...b, Endpoints: (b.Endpoints ?? []).map(endpointOf) }));
  });
  app.get('/v1/loadbalancers', async () => net.listLoadBalancers());
  app.get<Ref>('/v1/loadbalancers/:ref', async (req) => net.getLoadBalancer(req.params.ref));
  app.delete<Ref>('/v1/loadbalancers/:ref', async (req, reply) => {
    await net.deleteLoadBalancer(req.params.ref);
    return reply.status(204).send();
  });
  app.post<Ref>('/v1/loadbalancers/:ref/backends', { schema: { body: S.Backends } }, async (req) => {
    const b = req.body as { Add?: string[]; Remove?: string[] };
    const id = net.getLoadBalancer(req.params.ref).Id;
    if (b.Add?.length) await net.addBackends(id, b.Add.map(endpointOf));
    if (b.Remove?.length) await net.removeBackends(id, b.Remove.map(endpointOf));
    return net.getLoadBalancer(id);
  });
}
