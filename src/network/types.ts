// The network service's objects, shaped after HCN v2 (hcs-hns.md §3): Network, Endpoint, Namespace, LoadBalancer,
// with policies as {Type, Settings}. Field names keep HCN's PascalCase so the native API can pass them through.

import type { EventBus } from '../common/events.js';
import type { Finding } from '../common/leaks.js';
import type { Logger } from '../common/log.js';

export type NetworkType = 'nat' | 'internal' | 'l2bridge';
export type Protocol = 'tcp' | 'udp';

export interface Subnet {
  /** CIDR, e.g. "10.88.0.0/16", or an IPv6 one ("fd12:3456:789a::/64") as a dual-stack network's second subnet. */
  IpAddressPrefix: string;
  /** The bridge's address for nat/internal; the LAN's router for l2bridge (optional there). */
  GatewayAddress?: string;
  /** A CIDR inside the subnet: addresses picked automatically come only from it (fixed ones may be anywhere). */
  IpRange?: string;
  /** Named addresses never handed out (docker's auxiliary addresses: a router, a printer already on the LAN). */
  Reserved?: Record<string, string>;
}

export interface Ipam {
  Type: 'Static';
  Subnets: Subnet[];
}

export interface Dns {
  /** On a network: where its DNS server forwards (default: the host's resolvers); on l2bridge, what containers use.
   *  On an endpoint: overrides the nameservers written to its resolv.conf. */
  ServerList?: string[];
  Search?: string[];
  /** On an endpoint: resolv.conf options instead of the default `ndots:0`. */
  Options?: string[];
}

/** A line of an endpoint's /etc/hosts beyond its own names (docker's --add-host). */
export interface ExtraHost { Name: string; IpAddress: string }

export interface OutBoundNatSettings {
  /** Destinations (CIDRs or addresses) reached with the container's own address, not masqueraded. */
  Exceptions?: string[];
}

export type NetworkPolicy = { Type: 'OutBoundNAT'; Settings: OutBoundNatSettings };

export interface Network {
  Id: string;
  Name: string;
  Type: NetworkType;
  Ipams: Ipam[];
  Dns: Dns;
  Policies: NetworkPolicy[];
  /** l2bridge only: the host interface the bridge enslaves. */
  Interface?: string;
  /** The Linux bridge that is this network's vSwitch. */
  Bridge: string;
  CreatedAt: string;
  /** The creator's labels and driver options, kept as given (docker clients compare them to decide on recreation). */
  Labels?: Record<string, string>;
  Options?: Record<string, string>;
}

export interface PortMappingSettings {
  Protocol: Protocol;
  InternalPort: number;
  ExternalPort: number;
  /** Only this host address answers; absent = every local address, 127.0.0.1 included. */
  HostIp?: string;
}

export interface AclSettings {
  Action: 'Allow' | 'Block';
  Direction: 'In' | 'Out';
  /** Comma-separated protocol names or numbers ("tcp", "6,17"); empty = any. */
  Protocols?: string;
  /** Comma-separated CIDRs; empty = the endpoint's own address. */
  LocalAddresses?: string;
  /** Comma-separated CIDRs; empty = any. */
  RemoteAddresses?: string;
  /** Comma-separated ports or ranges ("80,8000-8080"); empty = any. */
  LocalPorts?: string;
  RemotePorts?: string;
  /** Kept and reported; nft sets are unordered, so an Allow always wins over a Block that overlaps it. */
  Priority?: number;
}

export interface RouteSettings {
  DestinationPrefix: string;
  NextHop: string;
}

export type EndpointPolicy =
  | { Type: 'PortMapping'; Settings: PortMappingSettings }
  | { Type: 'ACL'; Settings: AclSettings }
  | { Type: 'OutBoundNAT'; Settings: OutBoundNatSettings }
  | { Type: 'Route'; Settings: RouteSettings };

export interface Endpoint {
  Id: string;
  Name: string;
  NetworkId: string;
  IpAddress: string;
  PrefixLength: number;
  MacAddress: string;
  GatewayAddress?: string;
  /** On a dual-stack network: the IPv6 prefix plus the host part of IpAddress (dualstack.ts). */
  Ipv6Address?: string;
  Ipv6PrefixLength?: number;
  Ipv6GatewayAddress?: string;
  Dns: Dns;
  Policies: EndpointPolicy[];
  /** The namespace it is attached to, if any. */
  NamespaceId?: string;
  Aliases: string[];
  /** The host name /etc/hosts gives the endpoint's address first (FQDN, then the bare name), as docker writes it. */
  HostName?: string;
  ExtraHosts?: ExtraHost[];
  /** Host side of the veth pair (exists only while attached). */
  HostInterface: string;
  /** Interface name inside the namespace while attached (eth0, eth1...). */
  InterfaceName?: string;
  CreatedAt: string;
}

export interface Namespace {
  Id: string;
  /** The netns file to pass to the runtime (InitOptions.netnsPath). */
  Path: string;
  /** `ip netns` name. */
  Name: string;
  Endpoints: string[];
}

export type DistributionType = 'PerConnection' | 'SourceIP';

export interface LbPortMapping {
  Protocol: Protocol;
  InternalPort: number;
  ExternalPort: number;
  DistributionType: DistributionType;
}

export interface LoadBalancer {
  Id: string;
  Name: string;
  /** Virtual IPs; empty = every local address (a NodePort). */
  FrontendVIPs: string[];
  PortMappings: LbPortMapping[];
  /** Backend endpoint ids. */
  Endpoints: string[];
  CreatedAt: string;
}

export interface CreateNetworkRequest {
  Name: string;
  Type?: NetworkType;
  /** Absent for nat/internal = a /16 that collides with no host route; required for l2bridge. */
  Subnets?: Subnet[];
  Dns?: Dns;
  Policies?: NetworkPolicy[];
  Interface?: string;
  Labels?: Record<string, string>;
  Options?: Record<string, string>;
  /** Dual-stack: an IPv6 subnet beside the IPv4 one, a random unique-local /64 unless Subnets holds one. */
  EnableIpv6?: boolean;
}

export interface CreateEndpointRequest {
  name: string;
  /** A fixed address inside the network's subnet; absent = the IPAM's next free one. */
  ip?: string;
  aliases?: string[];
  /** The system's host name, FQDN when it has a domain: the first name of the endpoint's address in /etc/hosts. */
  hostName?: string;
  policies?: EndpointPolicy[];
  dns?: Dns;
  /** A chosen MAC address; default: derived from the IP address. */
  mac?: string;
  extraHosts?: ExtraHost[];
}

export interface ModifyEndpointRequest {
  RequestType: 'Add' | 'Remove' | 'Update';
  Policies: EndpointPolicy[];
}

export interface CreateLoadBalancerRequest {
  Name?: string;
  FrontendVIPs?: string[];
  PortMappings: Array<Omit<LbPortMapping, 'DistributionType'> & { DistributionType?: DistributionType }>;
  Endpoints?: string[];
}

export interface EtcFile {
  hostPath: string;
  containerPath: string;
}

/** Since the endpoint's interface was made; "received" is what reached the container. */
export interface EndpointStatistics {
  BytesReceived: number;
  BytesSent: number;
  PacketsReceived: number;
  PacketsSent: number;
  ErrorsIncoming: number;
  ErrorsOutgoing: number;
  DroppedPacketsIncoming: number;
  DroppedPacketsOutgoing: number;
}

export interface NetworkService {
  createNetwork(req: CreateNetworkRequest): Promise<Network>;
  listNetworks(): Network[];
  /** By id, unique id prefix or name. */
  getNetwork(ref: string): Network;
  deleteNetwork(ref: string): Promise<void>;

  createNamespace(): Promise<Namespace>;
  listNamespaces(): Namespace[];
  getNamespace(id: string): Namespace;
  /** Detaches its endpoints (they survive) and removes the netns. */
  deleteNamespace(id: string): Promise<void>;
  /**
   * createNamespace, and with `endpoint` createEndpoint and attach, as one operation (the independent steps side by
   * side, fewer processes); on failure nothing of it is left.
   */
  createSandbox(endpoint?: { network: string; req: CreateEndpointRequest }): Promise<{ namespace: Namespace; endpoint?: Endpoint }>;
  /** deleteEndpoint of each of `endpointIds` and deleteNamespace as one operation; what is already gone is no error. */
  deleteSandbox(namespaceId: string | undefined, endpointIds: string[]): Promise<void>;
  /** The netns names and endpoint ids of the endpoint pool (made ahead, not yet any system's; no records), once no refill is under way. */
  pooled(): Promise<{ namespaces: string[]; endpoints: string[] }>;

  createEndpoint(networkRef: string, req: CreateEndpointRequest): Promise<Endpoint>;
  listEndpoints(networkRef?: string): Endpoint[];
  getEndpoint(ref: string): Endpoint;
  modifyEndpoint(ref: string, req: ModifyEndpointRequest): Promise<Endpoint>;
  attach(endpointRef: string, namespaceId: string): Promise<Endpoint>;
  detach(endpointRef: string): Promise<Endpoint>;
  /** Detaches if needed, drops it from load balancers, frees its address for later reuse. */
  deleteEndpoint(ref: string): Promise<void>;
  /** Traffic counters of an endpoint as its container sees them (HNS's endpoint stats), from its host interface. */
  endpointStatistics(ref: string): Promise<EndpointStatistics>;

  createLoadBalancer(req: CreateLoadBalancerRequest): Promise<LoadBalancer>;
  listLoadBalancers(): LoadBalancer[];
  getLoadBalancer(id: string): LoadBalancer;
  deleteLoadBalancer(id: string): Promise<void>;
  addBackends(lbId: string, endpointRefs: string[]): Promise<LoadBalancer>;
  removeBackends(lbId: string, endpointRefs: string[]): Promise<LoadBalancer>;

  /** File contents for the container's /etc/resolv.conf and /etc/hosts. */
  resolvConf(endpointRef: string): string;
  hosts(endpointRef: string): string;
  /** Writes both under runDir and returns them as InitOptions.etcFiles entries. */
  writeEtcFiles(endpointRef: string): Promise<EtcFile[]>;

  /** Makes the kernel match the stored objects (run by openNetworkService too). */
  reconcile(): Promise<void>;
  /** Stops the DNS servers; kernel state stays so containers keep their network across daemon restarts. */
  close(): Promise<void>;
  /** Removes every object, every kernel object carrying the prefix, the nft table and the state (tests, reset). */
  purge(): Promise<void>;
  /** Namespaces and links with this service's prefix that none of its objects owns; for `silo doctor`. */
  leaks(): Promise<Finding[]>;
  /** Remove what leaks() found, and only that. */
  fixLeaks(found: Finding[]): Promise<void>;
}

export interface NetworkServiceOptions {
  stateDir: string;
  runDir: string;
  prefix: string;
  defaultNetwork?: boolean;
  /** Upstream resolvers ("ip" or "ip:port") for the DNS servers; default: the host's /etc/resolv.conf. */
  dnsUpstreams?: string[];
  /** Candidate subnets for the default and auto-addressed networks (tests narrow it). */
  subnetPool?: string[];
  log?: Logger;
  /** Where network create and destroy are published (the daemon's bus); none in tests that do not listen. */
  events?: EventBus;
}
