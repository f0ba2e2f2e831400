// The one nftables table Silo owns, in kube-proxy's nftables style: the chains are fixed and every per-object fact
// (a bridge, a port mapping, an ACL, an outbound-NAT exception, a load-balancer VIP or backend) is an element of a
// set or map. Adding or removing such a fact is one `add element`/`delete element`, never a ruleset rewrite. Only a
// load balancer brings its own objects (a slot map and one chain per port mapping), created with the LB.
//
// Sets and maps:
//   bridges            ifname                 every Silo bridge
//   bridge_pairs       ifname . ifname        br . br per network: traffic that stays on one bridge
//   internal_bridges   ifname                 bridges of `internal` networks: nothing leaves or enters them
//   nat_subnets        ipv4 (interval)        subnets of `nat` networks: masqueraded on the way out
//   nat_exceptions     saddr . daddr (intv)   OutBoundNAT exceptions: endpoint (or subnet) . destination
//   acl_{in,out}_{allow,block}  local . remote . l4proto . local port . remote port (interval)
//   portmap_ip         hostip . proto . port : ip . port     port mappings bound to one host address
//   portmap_any        proto . port : ip . port              port mappings on every local address
//   nat6_subnets, nat6_exceptions, acl6_*, portmap6_ip, portmap6_any   the same for dual-stack networks' IPv6
//   lb_vips            vip . proto . port : verdict          goto the LB's chain
//   lb_ports           proto . port : verdict                LBs without a VIP (every local address)
//   lbm_<lb>           slot (numgen/jhash mod N) : backend ip   one map per LB
//
// Why the nat rules look as they do: DNAT happens in prerouting (traffic from outside and from containers) and in
// output (the host itself, 127.0.0.1 included; that needs route_localnet on the bridges). DNATed traffic that came
// from a container (matched by source subnet: br_netfilter-bridged packets carry no iif) or from loopback is masqueraded, so replies return through the host (hairpin) and a 127.0.0.1
// source never reaches a container.

import { lbShort } from '../names.js';
import type { LoadBalancer } from '../types.js';

/** Slots per load balancer; the most backends one LB can have. */
export const LB_SLOTS = 1024;

const ACL_KEY = 'ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service';
const ACL6_KEY = 'ipv6_addr . ipv6_addr . inet_proto . inet_service . inet_service';

export function tableSkeleton(table: string): string {
  return `table inet ${table} {
  set bridges { type ifname; }
  set bridge_pairs { type ifname . ifname; }
  set internal_bridges { type ifname; }
  set nat_subnets { type ipv4_addr; flags interval; }
  set nat_exceptions { type ipv4_addr . ipv4_addr; flags interval; }
  set acl_in_allow { type ${ACL_KEY}; flags interval; }
  set acl_in_block { type ${ACL_KEY}; flags interval; }
  set acl_out_allow { type ${ACL_KEY}; flags interval; }
  set acl_out_block { type ${ACL_KEY}; flags interval; }
  map portmap_ip { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
  map portmap_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
  set nat6_subnets { type ipv6_addr; flags interval; }
  set nat6_exceptions { type ipv6_addr . ipv6_addr; flags interval; }
  set acl6_in_allow { type ${ACL6_KEY}; flags interval; }
  set acl6_in_block { type ${ACL6_KEY}; flags interval; }
  set acl6_out_allow { type ${ACL6_KEY}; flags interval; }
  set acl6_out_block { type ${ACL6_KEY}; flags interval; }
  map portmap6_ip { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }
  map portmap6_any { type inet_proto . inet_service : ipv6_addr . inet_service; }
  map lb_vips { type ipv4_addr . inet_proto . inet_service : verdict; }
  map lb_ports { type inet_proto . inet_service : verdict; }

  chain services {
    ip daddr . meta l4proto . th dport vmap @lb_vips
    fib daddr type local meta l4proto . th dport vmap @lb_ports
    dnat ip to ip daddr . meta l4proto . th dport map @portmap_ip
    fib daddr type local dnat ip to meta l4proto . th dport map @portmap_any
    dnat ip6 to ip6 daddr . meta l4proto . th dport map @portmap6_ip
    fib daddr type local dnat ip6 to meta l4proto . th dport map @portmap6_any
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }
  chain output_nat {
    type nat hook output priority -100; policy accept;
    jump services
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ip saddr 127.0.0.0/8 masquerade
    ct status dnat ip saddr @nat_subnets masquerade
    ip saddr . ip daddr @nat_exceptions return
    ip saddr @nat_subnets oifname != @bridges masquerade
    ct status dnat ip6 saddr @nat6_subnets masquerade
    ip6 saddr . ip6 daddr @nat6_exceptions return
    ip6 saddr @nat6_subnets oifname != @bridges masquerade
  }

  chain acl_in {
    ip daddr . ip saddr . meta l4proto . th dport . th sport @acl_in_allow return
    ip daddr . ip saddr . meta l4proto . th dport . th sport @acl_in_block drop
    ip6 daddr . ip6 saddr . meta l4proto . th dport . th sport @acl6_in_allow return
    ip6 daddr . ip6 saddr . meta l4proto . th dport . th sport @acl6_in_block drop
  }
  chain acl_out {
    ip saddr . ip daddr . meta l4proto . th sport . th dport @acl_out_allow return
    ip saddr . ip daddr . meta l4proto . th sport . th dport @acl_out_block drop
    ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport @acl6_out_allow return
    ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport @acl6_out_block drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    iifname @bridges jump acl_out
    oifname @bridges jump acl_in
    iifname . oifname @bridge_pairs accept
    iifname @internal_bridges drop
    oifname @internal_bridges drop
    ct status dnat oifname @bridges accept
    iifname @bridges oifname @bridges drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname != @bridges accept
    ct state established,related accept
    jump acl_out
    iifname @internal_bridges meta l4proto . th dport != { udp . 53, tcp . 53 } drop
  }
  chain output {
    type filter hook output priority filter; policy accept;
    oifname != @bridges accept
    ct state established,related accept
    jump acl_in
  }
}
`;
}

export function lbChainName(lbId: string, i: number): string {
  return `lb_${lbShort(lbId)}_${i}`;
}

export function lbMapName(lbId: string): string {
  return `lbm_${lbShort(lbId)}`;
}

/** The map and chains a load balancer brings; its VIP elements are added separately. */
export function lbObjects(table: string, lb: LoadBalancer): string {
  const map = lbMapName(lb.Id);
  const lines = [`add map inet ${table} ${map} { typeof numgen random mod ${LB_SLOTS} : ip daddr; }`];
  lb.PortMappings.forEach((pm, i) => {
    const chain = lbChainName(lb.Id, i);
    // PerConnection: a fresh random slot per new connection. SourceIP: the slot is a hash of the client address,
    // so a client keeps its backend as long as its slot is not reassigned.
    const pick =
      pm.DistributionType === 'SourceIP'
        ? `jhash ip saddr mod ${LB_SLOTS} seed 0x${lb.Id.slice(0, 8)}`
        : `numgen random mod ${LB_SLOTS}`;
    lines.push(`add chain inet ${table} ${chain}`);
    lines.push(`add rule inet ${table} ${chain} meta l4proto ${pm.Protocol} dnat ip to ${pick} map @${map} : ${pm.InternalPort}`);
    // No backend: refuse instead of letting the packet go on to a VIP that nobody owns.
    lines.push(`add rule inet ${table} ${chain} drop`);
  });
  return lines.join('\n') + '\n';
}

/** Deleting an LB: chains first need no references, so the caller removes its VIP elements in the same batch. */
export function lbObjectsDelete(table: string, lb: LoadBalancer): string {
  const lines: string[] = [];
  lb.PortMappings.forEach((_, i) => lines.push(`delete chain inet ${table} ${lbChainName(lb.Id, i)}`));
  lines.push(`delete map inet ${table} ${lbMapName(lb.Id)}`);
  return lines.join('\n') + '\n';
}
