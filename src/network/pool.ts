// Endpoints made ahead, as the scratch pool keeps formatted scratch images: per network, a few namespaces each with an
// endpoint plugged in (address, veth on the bridge, routes), so a compute system's create takes one and only writes its
// records. Pooled objects have no records: they live in this memory only, and after a crash the next start's
// reconcile removes their links and namespaces as orphans and prunes their addresses. Only requests without a fixed
// address are served from the pool.

import { newId } from '../common/ids.js';
import { attachedRecords } from './attach.js';
import type { Ctx } from './context.js';
import { endpointFields } from './endpoints.js';
import { allocate, release } from './ipam.js';
import { parseCidr, parseIp } from './ipv4.js';
import * as k from './kernel.js';
import { macForIp, netnsName, ownerAlias, vethName } from './names.js';
import { ipv6Fields } from './dualstack.js';
import { endpointElems } from './nft/elements.js';
import type { CreateEndpointRequest, Endpoint, Namespace } from './types.js';

interface Pooled {
  ns: Namespace;
  ep: Endpoint;
}

export class EndpointPool {
  private readonly ready = new Map<string, Pooled[]>();
  private readonly filling = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly ctx: Ctx,
    private readonly lock: <T>(fn: () => Promise<T>) => Promise<T>,
    private readonly depth = 2,
  ) {}

  /**
   * A pooled sandbox on `networkRef` made the caller's (records written, policies applied), or undefined when none is
   * ready or the request fixes an address. Runs under the service's lock; starts a refill either way.
   */
  async take(networkRef: string, req: CreateEndpointRequest): Promise<{ namespace: Namespace; endpoint: Endpoint } | undefined> {
    const net = this.ctx.network(networkRef);
    if (req.ip !== undefined || req.mac !== undefined) return undefined;
    if (!this.ready.get(net.Id)?.length) {
      this.refill(net.Id);
      return undefined;
    }
    const fields = await endpointFields(this.ctx, net, req); // checked before a pooled one is spent
    const p = this.ready.get(net.Id)?.shift();
    this.refill(net.Id);
    if (!p) return undefined;
    const ep: Endpoint = { ...p.ep, ...fields, CreatedAt: new Date().toISOString() };
    try {
      // The namespace and endpoint records, each written once and already attached.
      await attachedRecords(this.ctx, ep, p.ns);
      await this.ctx.changeElems(endpointElems(ep, net.Type), []);
    } catch (e) {
      this.ctx.endpoints.delete(ep.Id);
      this.ctx.namespaces.delete(p.ns.Id);
      await Promise.all([this.ctx.store.remove('endpoints', ep.Id), this.ctx.store.remove('namespaces', p.ns.Id)]).catch(() => {});
      await this.destroy(p).catch(() => {});
      throw e;
    }
    return { namespace: p.ns, endpoint: ep };
  }

  /**
   * Top the network's pool up in the background, one entry per turn of the service's lock (so nothing else can see
   * an entry half-made, and whoever holds the lock may drain); a failure only leaves creates on the slow path.
   */
  refill(networkId: string): void {
    if (this.closed || this.filling.has(networkId)) return;
    const run = (async () => {
      let more = true;
      while (more) {
        more = await this.lock(async () => {
          if (this.closed || !this.ctx.networks.has(networkId) || (this.ready.get(networkId)?.length ?? 0) >= this.depth) return false;
          const p = await this.make(networkId);
          this.ready.set(networkId, [...(this.ready.get(networkId) ?? []), p]);
          return true;
        });
      }
    })()
      .catch((e) => this.ctx.log.debug({ err: (e as Error).message }, 'endpoint pool refill failed'))
      .finally(() => this.filling.delete(networkId));
    this.filling.set(networkId, run);
  }

  /**
   * Remove the network's pooled endpoints (every network's without one): before the network goes, when a request
   * wants an address the pool holds or the subnet is full, and at shutdown (`close`: no refill after it). The caller
   * holds the service's lock, so no entry is half-made.
   */
  async drain(networkId?: string, o: { close?: boolean } = {}): Promise<void> {
    if (o.close) this.closed = true;
    for (const id of networkId === undefined ? [...this.ready.keys()] : [networkId]) {
      for (const p of this.ready.get(id) ?? []) await this.destroy(p);
      this.ready.delete(id);
    }
  }

  /** Resolves when no refill is under way. */
  async settled(): Promise<void> {
    while (this.filling.size) await Promise.all(this.filling.values());
  }

  objects(): { namespaces: string[]; endpoints: string[] } {
    const all = [...this.ready.values()].flat();
    return { namespaces: all.map((p) => p.ns.Name), endpoints: all.map((p) => p.ep.Id) };
  }

  /** Whether the pool holds `ip` on the network. */
  holds(networkId: string, ip: string): boolean {
    return (this.ready.get(networkId) ?? []).some((p) => p.ep.IpAddress === ip);
  }

  /** Whether the pool holds any address on the network. */
  holdsAny(networkId: string): boolean {
    return (this.ready.get(networkId)?.length ?? 0) > 0;
  }

  private async make(networkId: string): Promise<Pooled> {
    const ctx = this.ctx;
    const net = ctx.networks.get(networkId)!;
    const subnet = net.Ipams[0].Subnets[0];
    const { ep, ns } = await (async () => {
      const vnames = new Set([...ctx.endpoints.values()].map((e) => e.HostInterface));
      for (const l of this.ready.values()) for (const p of l) vnames.add(p.ep.HostInterface);
      let id = newId();
      while (vnames.has(vethName(ctx.prefix, id))) id = newId();
      const { state, ip } = allocate(ctx.ipam.get(networkId)!, id, undefined);
      await ctx.store.put('ipam', networkId, state);
      ctx.ipam.set(networkId, state);
      const nsId = newId();
      const ns: Namespace = { Id: nsId, Name: netnsName(ctx.prefix, nsId), Path: `/run/netns/${netnsName(ctx.prefix, nsId)}`, Endpoints: [id] };
      const ep: Endpoint = {
        Id: id, Name: '', NetworkId: networkId, IpAddress: ip, PrefixLength: parseCidr(subnet.IpAddressPrefix).len, MacAddress: macForIp(parseIp(ip)),
        Dns: { ServerList: [], Search: [] }, Policies: [], Aliases: [], HostInterface: vethName(ctx.prefix, id), NamespaceId: nsId, InterfaceName: 'eth0',
        CreatedAt: '', ...(subnet.GatewayAddress ? { GatewayAddress: subnet.GatewayAddress } : {}), ...ipv6Fields(net, ip),
      };
      return { ep, ns };
    })();
    const spec: k.VethSpec = {
      host: ep.HostInterface, alias: ownerAlias(ctx.prefix, 'ep', ep.Id), bridge: net.Bridge, netns: ns.Name, ifname: 'eth0',
      mac: ep.MacAddress, address: `${ep.IpAddress}/${ep.PrefixLength}`, gateway: ep.GatewayAddress, defaultRoute: true, routes: [],
      ...(ep.Ipv6Address ? { address6: `${ep.Ipv6Address}/${ep.Ipv6PrefixLength}`, gateway6: ep.Ipv6GatewayAddress, defaultRoute6: true } : {}),
    };
    try {
      await k.createVeth(spec, { withNetns: true });
    } catch (e) {
      await this.destroy({ ep, ns });
      throw e;
    }
    return { ep, ns };
  }

  /** A pooled entry's link, namespace and address (under the service's lock). */
  private async destroy(p: Pooled): Promise<void> {
    await k.deleteLinksAndNetns([p.ep.HostInterface], [p.ns.Name]);
    const cur = this.ctx.ipam.get(p.ep.NetworkId);
    if (!cur || cur.allocated[p.ep.IpAddress] !== p.ep.Id) return;
    const next = release(cur, p.ep.IpAddress);
    await this.ctx.store.put('ipam', p.ep.NetworkId, next);
    this.ctx.ipam.set(p.ep.NetworkId, next);
  }
}
