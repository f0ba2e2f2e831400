// Joining a utility VM's tap to the container's endpoint, as Kata's tc-filter mode does: inside the container's
// network namespace everything arriving on the endpoint's interface is redirected to the tap (and so to the guest NIC,
// which carries the endpoint's MAC and address) and everything the guest sends out is redirected to the endpoint.
// The endpoint stays the network service's; published ports, DNS, ACLs and load balancers see the same interface.

import { basename, dirname } from 'node:path';
import { run } from '../../common/exec.js';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** A spare VM's tap, made in the spare's own network namespace, moved into the container's (under /run/netns). */
export async function moveTap(qemuPid: number, netnsPath: string, tap: string): Promise<void> {
  const ns = basename(netnsPath);
  if (!IFNAME.test(tap) || dirname(netnsPath) !== '/run/netns' || !/^[A-Za-z0-9_.-]+$/.test(ns)) throw new Error(`cannot move ${tap} into ${netnsPath}`);
  await run('nsenter', [`--net=/proc/${qemuPid}/ns/net`, '--', 'ip', 'link', 'set', 'dev', tap, 'netns', ns]);
}

export async function attachTap(netnsPath: string, ifname: string, tap: string): Promise<void> {
  if (!IFNAME.test(ifname) || !IFNAME.test(tap)) throw new Error(`bad interface name ${ifname} or ${tap}`);
  const script = [
    `ip link set ${tap} up`,
    // A VM of an earlier start of the same system left its redirect on the endpoint: replace it.
    `tc qdisc del dev ${ifname} ingress 2>/dev/null || true`,
    `tc qdisc add dev ${ifname} ingress`,
    `tc filter add dev ${ifname} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${tap}`,
    `tc qdisc add dev ${tap} ingress`,
    `tc filter add dev ${tap} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${ifname}`,
  ].join(' && ');
  await run('nsenter', [`--net=${netnsPath}`, '--', '/bin/sh', '-ec', script]);
}
