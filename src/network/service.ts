// The NetworkService: every mutation runs under one lock (state → kernel → store stay in step); reads return copies.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic.js';
import { attachEndpoint, createNamespace, deleteNamespace, detachEndpoint } from './attach.js';
import type { Ctx } from './context.js';
import { createEndpoint, deleteEndpoint, modifyEndpoint } from './endpoints.js';
import { containerReachable, renderHosts, renderResolvConf } from './etc.js';
import { addBackends, createLoadBalancer, deleteLoadBalancer, removeBackends } from './loadbalancers.js';
import { createNetwork, deleteNetwork, ownsGateway } from './networks.js';
import { purge, reconcile } from './reconcile.js';
import { EndpointPool } from './pool.js';
import { createSandbox, deleteSandbox } from './sandbox.js';
import { badState, isSiloError } from '../common/errors.js';
import type {
  CreateEndpointRequest,
  CreateLoadBalancerRequest,
  CreateNetworkRequest,
  Endpoint,
  EndpointStatistics,
  EtcFile,
  LoadBalancer,
  ModifyEndpointRequest,
  Namespace,
  Network,
  NetworkService,
} from './types.js';
import { removeFindings, type Finding } from '../common/leaks.js';
import { networkLeaks } from './leaks.js';
import * as k from './kernel.js';

const copy = <T>(v: T): T => structuredClone(v);

export class NetworkServiceImpl implements NetworkService {
  private readonly pool: EndpointPool;

  constructor(private readonly ctx: Ctx) {
    this.pool = new EndpointPool(ctx, (fn) => this.locked(fn));
  }

  /**
   * `make` with the pool out of its way: an address the pool holds is given back first, and a full subnet is tried
   * again without the pool's addresses. Under the lock.
   */
  private async unpooled<T>(networkRef: string, ip: string | undefined, make: () => Promise<T>): Promise<T> {
    const netId = this.ctx.network(networkRef).Id;
    if (ip !== undefined && this.pool.holds(netId, ip)) await this.pool.drain(netId);
    try {
      return await make();
    } catch (e) {
      if (!(isSiloError(e) && e.class === 'NoCapacity' && this.pool.holdsAny(netId))) throw e;
      await this.pool.drain(netId);
      return await make();
    } finally {
      this.pool.refill(netId); // after the lock: what was drained is made again where addresses allow
    }
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.ctx.lock.run('network', fn);
  }

  createNetwork(req: CreateNetworkRequest): Promise<Network> {
    return this.locked(async () => {
      const n = await createNetwork(this.ctx, req);
      this.ctx.opts.events?.publish('network', 'create', n.Id, { name: n.Name, type: n.Type });
      return copy(n);
    });
  }
  listNetworks(): Network[] {
    return [...this.ctx.networks.values()].map(copy);
  }
  getNetwork(ref: string): Network {
    return copy(this.ctx.network(ref));
  }
  deleteNetwork(ref: string): Promise<void> {
    return this.locked(async () => {
      const n = this.ctx.network(ref);
      await this.pool.drain(n.Id);
      await deleteNetwork(this.ctx, ref);
      this.ctx.opts.events?.publish('network', 'destroy', n.Id, { name: n.Name, type: n.Type });
    });
  }

  createNamespace(): Promise<Namespace> {
    return this.locked(async () => copy(await createNamespace(this.ctx)));
  }
  listNamespaces(): Namespace[] {
    return [...this.ctx.namespaces.values()].map(copy);
  }
  getNamespace(id: string): Namespace {
    return copy(this.ctx.namespace(id));
  }
  deleteNamespace(id: string): Promise<void> {
    return this.locked(() => deleteNamespace(this.ctx, id));
  }
  createSandbox(endpoint?: { network: string; req: CreateEndpointRequest }): Promise<{ namespace: Namespace; endpoint?: Endpoint }> {
    return this.locked(async () => {
      if (!endpoint) return copy(await createSandbox(this.ctx));
      const pooled = await this.pool.take(endpoint.network, endpoint.req);
      if (pooled) return copy(pooled);
      return copy(await this.unpooled(endpoint.network, endpoint.req.ip, () => createSandbox(this.ctx, endpoint)));
    });
  }
  deleteSandbox(namespaceId: string | undefined, endpointIds: string[]): Promise<void> {
    return this.locked(() => deleteSandbox(this.ctx, namespaceId, endpointIds));
  }

  async pooled(): Promise<{ namespaces: string[]; endpoints: string[] }> {
    await this.pool.settled();
    return this.pool.objects();
  }

  createEndpoint(networkRef: string, req: CreateEndpointRequest): Promise<Endpoint> {
    return this.locked(async () => copy(await this.unpooled(networkRef, req.ip, () => createEndpoint(this.ctx, networkRef, req))));
  }
  listEndpoints(networkRef?: string): Endpoint[] {
    const netId = networkRef === undefined ? undefined : this.ctx.network(networkRef).Id;
    return [...this.ctx.endpoints.values()].filter((e) => netId === undefined || e.NetworkId === netId).map(copy);
  }
  getEndpoint(ref: string): Endpoint {
    return copy(this.ctx.endpoint(ref));
  }
  async endpointStatistics(ref: string): Promise<EndpointStatistics> {
    const ep = this.ctx.endpoint(ref);
    // The host end of the veth: what it received, the container sent.
    const c = await k.linkCounters(ep.HostInterface);
    if (!c) throw badState(`endpoint ${ep.Id} has no interface on the host`);
    return {
      BytesReceived: c.tx_bytes, BytesSent: c.rx_bytes, PacketsReceived: c.tx_packets, PacketsSent: c.rx_packets,
      ErrorsIncoming: c.tx_errors, ErrorsOutgoing: c.rx_errors, DroppedPacketsIncoming: c.tx_dropped, DroppedPacketsOutgoing: c.rx_dropped,
    };
  }
  modifyEndpoint(ref: string, req: ModifyEndpointRequest): Promise<Endpoint> {
    return this.locked(async () => copy(await modifyEndpoint(this.ctx, ref, req)));
  }
  attach(endpointRef: string, namespaceId: string): Promise<Endpoint> {
    return this.locked(async () => copy(await attachEndpoint(this.ctx, endpointRef, namespaceId)));
  }
  detach(endpointRef: string): Promise<Endpoint> {
    return this.locked(async () => copy(await detachEndpoint(this.ctx, endpointRef)));
  }
  deleteEndpoint(ref: string): Promise<void> {
    return this.locked(() => deleteEndpoint(this.ctx, ref));
  }

  createLoadBalancer(req: CreateLoadBalancerRequest): Promise<LoadBalancer> {
    return this.locked(async () => copy(await createLoadBalancer(this.ctx, req)));
  }
  listLoadBalancers(): LoadBalancer[] {
    return [...this.ctx.lbs.values()].map(copy);
  }
  getLoadBalancer(id: string): LoadBalancer {
    return copy(this.ctx.lb(id));
  }
  deleteLoadBalancer(id: string): Promise<void> {
    return this.locked(() => deleteLoadBalancer(this.ctx, id));
  }
  addBackends(lbId: string, endpointRefs: string[]): Promise<LoadBalancer> {
    return this.locked(async () => copy(await addBackends(this.ctx, lbId, endpointRefs)));
  }
  removeBackends(lbId: string, endpointRefs: string[]): Promise<LoadBalancer> {
    return this.locked(async () => copy(await removeBackends(this.ctx, lbId, endpointRefs)));
  }

  resolvConf(endpointRef: string): string {
    const ep = this.ctx.endpoint(endpointRef);
    const net = this.ctx.networks.get(ep.NetworkId)!;
    const search = ep.Dns.Search?.length ? ep.Dns.Search : net.Dns.Search ?? [];
    let servers: string[];
    if (ep.Dns.ServerList?.length) servers = ep.Dns.ServerList;
    else if (ownsGateway(net)) servers = [ep.GatewayAddress!];
    else servers = net.Dns.ServerList?.length ? net.Dns.ServerList : containerReachable(this.ctx.hostResolvers);
    return renderResolvConf(servers, search, ep.Dns.Options);
  }

  hosts(endpointRef: string): string {
    const ep = this.ctx.endpoint(endpointRef);
    // As docker: the host name first (FQDN, then the bare name), so `hostname -f` gives it; then Silo's other names.
    const host = ep.HostName ? [ep.HostName, ep.HostName.split('.')[0]] : [];
    return renderHosts(ep.IpAddress, [...new Set([...host, ep.Name, ...ep.Aliases])], ep.ExtraHosts, ep.Ipv6Address);
  }

  async writeEtcFiles(endpointRef: string): Promise<EtcFile[]> {
    const ep = this.ctx.endpoint(endpointRef);
    const dir = join(this.ctx.runDir, 'etc', ep.Id);
    await mkdir(dir, { recursive: true });
    await Promise.all([
      writeFileAtomic(join(dir, 'resolv.conf'), this.resolvConf(ep.Id), 0o644, { durable: false }),
      writeFileAtomic(join(dir, 'hosts'), this.hosts(ep.Id), 0o644, { durable: false }),
    ]);
    return [
      { hostPath: join(dir, 'resolv.conf'), containerPath: '/etc/resolv.conf' },
      { hostPath: join(dir, 'hosts'), containerPath: '/etc/hosts' },
    ];
  }

  reconcile(): Promise<void> {
    return this.locked(() => reconcile(this.ctx));
  }

  close(): Promise<void> {
    return this.locked(async () => {
      await this.pool.drain(undefined, { close: true });
      for (const d of this.ctx.dns.values()) await d.stop();
      this.ctx.dns.clear();
    });
  }

  purge(): Promise<void> {
    return this.locked(() => purge(this.ctx));
  }

  leaks(): Promise<Finding[]> {
    // Under the lock no pool entry is half-made.
    return this.locked(() => networkLeaks(this.ctx, this.pool.objects()));
  }

  fixLeaks(found: Finding[]): Promise<void> {
    return this.locked(() => removeFindings(found.filter((f) => f.Owner === 'network')));
  }
}
