// The compute service's side of networking: it asks the network service for a namespace and an endpoint for each
// compute system (as HCS joins a container to an HCN namespace) and never touches links or tables itself.

import { badState, conflict, invalid } from '../common/errors.js';
import type { GuestInterface, Statistics } from './backend.js';
import type { CreateEndpointRequest, EtcFile, NetworkService } from '../network/types.js';
import type { ComputeSystemRecord, Networking } from './types.js';

const DEFAULT_NETWORK = 'nat';

/** The spec's per-endpoint DNS, MAC and hosts lines, as the network service takes them. */
function endpointExtras(n: Networking): Partial<CreateEndpointRequest> {
  const d = n.Dns;
  return {
    ...(d ? { dns: { ServerList: d.Servers ?? [], Search: d.Search ?? [], ...(d.Options ? { Options: d.Options } : {}) } } : {}),
    ...(n.MacAddress ? { mac: n.MacAddress } : {}),
    ...(n.ExtraHosts?.length ? { extraHosts: n.ExtraHosts } : {}),
  };
}

export class SystemNetworking {
  constructor(private readonly net: NetworkService) {}

  /** `s` with the counters of the system's endpoints by interface name; one gone meanwhile (a disconnect) is left out. */
  async withCounters(n: Networking | undefined, s: Statistics): Promise<Statistics> {
    const network: NonNullable<Statistics['network']> = {};
    for (const id of n?.Endpoints ?? []) {
      try {
        const name = this.net.getEndpoint(id).InterfaceName;
        if (name) network[name] = await this.net.endpointStatistics(id);
      } catch {
        /* disconnected meanwhile */
      }
    }
    return Object.keys(network).length ? { ...s, network } : s;
  }

  /** Make what the document asks for (a namespace, and an endpoint in it unless the network is none) as one operation of the network service; on failure nothing of it is left. */
  async setup(rec: ComputeSystemRecord): Promise<Pick<Networking, 'Namespace' | 'Endpoints' | 'PortMappings'>> {
    const n = rec.Document.Container.Networking ?? {};
    const network = n.Network === 'none' ? undefined : (n.Network ?? DEFAULT_NETWORK);
    const { namespace, endpoint } = await this.net.createSandbox(
      network === undefined ? undefined : { network, req: { ...this.endpointRequest(rec, n.IpAddress, n.Aliases, n.PortMappings), ...endpointExtras(n) } },
    );
    const out: Pick<Networking, 'Namespace' | 'Endpoints' | 'PortMappings'> = { Namespace: namespace.Id, Endpoints: endpoint ? [endpoint.Id] : [] };
    // The network service picked the host ports asked as 0; the system's document records the ports it got.
    if (endpoint && n.PortMappings?.length) {
      // The endpoint's mappings are the request's, in its order.
      const got = endpoint.Policies.flatMap((p) => (p.Type === 'PortMapping' ? [p.Settings.ExternalPort] : []));
      out.PortMappings = n.PortMappings.map((pm, i) => ({ ...pm, ExternalPort: got[i] ?? pm.ExternalPort }));
    }
    return out;
  }

  /** Another network for a system that has a namespace (`network connect`); live if it runs. */
  async connect(rec: ComputeSystemRecord, network: string, ip?: string, aliases?: string[]): Promise<string> {
    const n = rec.Document.Container.Networking;
    if (!n?.Namespace) throw badState(`container ${rec.Name} has no network namespace`);
    const netId = this.net.getNetwork(network).Id;
    if ((n.Endpoints ?? []).some((e) => this.net.getEndpoint(e).NetworkId === netId)) {
      throw conflict(`container ${rec.Name} is already connected to network ${network}`);
    }
    // Published ports live on the system's first endpoint (docker's gateway endpoint): a system that lost all its
    // endpoints (compose disconnects and reconnects at start) gets them back on the one it connects now.
    const ports = n.Endpoints?.length ? undefined : n.PortMappings;
    return this.endpoint(rec, network, n.Namespace, ip, aliases, ports);
  }

  /** The endpoint of `rec` on `network`, detached and deleted; returns its id. */
  async disconnect(rec: ComputeSystemRecord, network: string): Promise<string> {
    const netId = this.net.getNetwork(network).Id;
    const ep = (rec.Document.Container.Networking?.Endpoints ?? []).find((e) => this.net.getEndpoint(e).NetworkId === netId);
    if (!ep) throw badState(`container ${rec.Name} is not connected to network ${network}`);
    await this.net.deleteEndpoint(ep);
    // The ports move to the endpoint that is first now, so they never vanish while the system is connected.
    const rest = (rec.Document.Container.Networking?.Endpoints ?? []).filter((e) => e !== ep);
    const ports = rec.Document.Container.Networking?.PortMappings ?? [];
    if (rest.length && ports.length && rec.Document.Container.Networking!.Endpoints![0] === ep) {
      await this.net.modifyEndpoint(rest[0], { RequestType: 'Add', Policies: ports.map((p) => ({ Type: 'PortMapping' as const, Settings: p })) });
    }
    return ep;
  }

  /** Where the init process' namespace is and the resolv.conf and hosts it gets. */
  async runtime(n: Networking | undefined): Promise<{ netnsPath?: string; etcFiles: EtcFile[] }> {
    if (!n?.Namespace) return { etcFiles: [] };
    const ns = this.net.getNamespace(n.Namespace);
    const etcFiles = n.Endpoints?.length ? await this.net.writeEtcFiles(n.Endpoints[0]) : [];
    return { netnsPath: ns.Path, etcFiles };
  }

  /** The endpoints as a utility VM's NICs: the interface in the namespace, its MAC, address and gateway. */
  guestInterfaces(n: Networking | undefined): GuestInterface[] {
    return (n?.Endpoints ?? []).map((id) => {
      const e = this.net.getEndpoint(id);
      // The guest configures what it is given, and it is given IPv4 only: published IPv6 ports would lead nowhere.
      if (e.Ipv6Address) throw invalid(`a container with --isolation vm cannot be on a dual-stack network (${this.net.getNetwork(e.NetworkId).Name}) yet: its guest gets no IPv6 address`);
      return { ifname: e.InterfaceName ?? 'eth0', mac: e.MacAddress, address: `${e.IpAddress}/${e.PrefixLength}`, ...(e.GatewayAddress ? { gateway: e.GatewayAddress } : {}) };
    });
  }

  /** Remove the system's endpoints and namespace (one operation of the network service); what is already gone is no error. */
  async teardown(n: Networking | undefined): Promise<void> {
    if (n?.Namespace || n?.Endpoints?.length) await this.net.deleteSandbox(n.Namespace, n.Endpoints ?? []);
  }

  /** Namespaces and endpoints that belong to no system: left by an interrupted create or remove. */
  orphans(systems: (Networking | undefined)[]): Networking[] {
    const ns = new Set(systems.map((n) => n?.Namespace));
    const eps = new Set(systems.flatMap((n) => n?.Endpoints ?? []));
    return [
      ...this.net.listNamespaces().filter((n) => !ns.has(n.Id)).map((n) => ({ Namespace: n.Id })),
      ...this.net.listEndpoints().filter((e) => !eps.has(e.Id)).map((e) => ({ Endpoints: [e.Id] })),
    ];
  }

  endpointOf(ref: string) {
    return this.net.getEndpoint(ref);
  }

  /** A network's id, name and type by id, id prefix or name (for events). */
  networkOf(ref: string): { id: string; name: string; type: string } {
    const n = this.net.getNetwork(ref);
    return { id: n.Id, name: n.Name, type: n.Type };
  }

  /** The networks of a system's endpoints (for events); one whose endpoint or network is gone is left out. */
  networksOf(n: Networking | undefined): { id: string; name: string; type: string }[] {
    return (n?.Endpoints ?? []).flatMap((ep) => {
      try {
        return [this.networkOf(this.endpointOf(ep).NetworkId)];
      } catch {
        return [];
      }
    });
  }

  private endpointRequest(rec: ComputeSystemRecord, ip?: string, aliases?: string[], ports?: Networking['PortMappings']): CreateEndpointRequest {
    const host = rec.Document.Container.GuestOs.HostName;
    const names = [...new Set([...(aliases ?? []), rec.Id.slice(0, 12), host])].filter((a) => a !== rec.Name);
    const dns = rec.Document.Container.Networking?.Dns;
    const domain = rec.Document.Container.Sysctls?.['kernel.domainname'];
    return {
      name: rec.Name,
      hostName: domain ? `${host}.${domain}` : host,
      ip,
      ...(dns ? { dns: { ServerList: dns.Servers, Search: dns.Search, Options: dns.Options } } : {}),
      aliases: names,
      policies: (ports ?? []).map((p) => ({ Type: 'PortMapping' as const, Settings: p })),
    };
  }

  private async endpoint(rec: ComputeSystemRecord, network: string, nsId: string, ip?: string, aliases?: string[], ports?: Networking['PortMappings']): Promise<string> {
    const ep = await this.net.createEndpoint(network, this.endpointRequest(rec, ip, aliases, ports));
    try {
      await this.net.attach(ep.Id, nsId);
    } catch (e) {
      await this.net.deleteEndpoint(ep.Id).catch(() => {});
      throw e;
    }
    return ep.Id;
  }
}
