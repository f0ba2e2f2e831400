// Joining a utility VM's tap to the container's endpoint, as Kata's tc-filter mode does: inside the container's
// network namespace everything arriving on the endpoint's interface is redirected to the tap (and so to the guest NIC,
// which carries the endpoint's MAC and address) and everything the guest sends out is redirected to the endpoint.
// The endpoint stays the network service's; published ports, DNS, ACLs and load balancers see the same interface.

import { run } from '../../common/exec.js';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

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
