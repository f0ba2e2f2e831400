// Silo's network service (the role of HNS/HCN): nat, internal and l2bridge networks on Linux bridges, endpoints on
// veth pairs in network namespaces, policies and load balancers in one nftables table, a DNS server per network.

import { Ctx } from './context.js';
import { NetworkServiceImpl } from './service.js';
import type { NetworkService, NetworkServiceOptions } from './types.js';

export type * from './types.js';
export { DEFAULT_NETWORK } from './reconcile.js';

/** Loads the stored objects and reconciles the kernel with them (creating the default `nat` network if asked). */
export async function openNetworkService(opts: NetworkServiceOptions): Promise<NetworkService> {
  const ctx = new Ctx(opts);
  await ctx.load();
  const svc = new NetworkServiceImpl(ctx);
  await svc.reconcile();
  return svc;
}
