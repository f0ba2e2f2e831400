// A compute system's network as one operation: its namespace with an endpoint attached, made or removed with as few
// processes as the kernel work allows. Each step is the one createNamespace, createEndpoint, attach, deleteEndpoint and
// deleteNamespace take, so the state kept is the same and what a crash leaves is found and finished the same way.

import * as k from './kernel.js';
import { attachEndpoint, createNamespace, deleteNamespace } from './attach.js';
import type { Ctx } from './context.js';
import { createEndpoint, deleteEndpoint, forgetEndpoint } from './endpoints.js';
import { removeBackendsFrom } from './loadbalancers.js';
import type { CreateEndpointRequest, Endpoint, Namespace } from './types.js';

/**
 * A namespace, and when `network` is given an endpoint on it attached there. The namespace and the endpoint's address
 * and records do not depend on each other and are made side by side; on failure nothing of either is left.
 */
export async function createSandbox(ctx: Ctx, endpoint?: { network: string; req: CreateEndpointRequest }): Promise<{ namespace: Namespace; endpoint?: Endpoint }> {
  const [ns, ep] = await Promise.allSettled([
    // The endpoint's batch in the namespace brings `lo` up; without one, createNamespace does.
    createNamespace(ctx, { loopback: endpoint === undefined }),
    endpoint === undefined ? Promise.resolve(undefined) : createEndpoint(ctx, endpoint.network, endpoint.req),
  ]);
  const undo = async () => {
    if (ep.status === 'fulfilled' && ep.value) await deleteEndpoint(ctx, ep.value.Id).catch(() => {});
    if (ns.status === 'fulfilled') await deleteNamespace(ctx, ns.value.Id).catch(() => {});
  };
  if (ns.status === 'rejected' || ep.status === 'rejected') {
    await undo();
    throw ns.status === 'rejected' ? ns.reason : (ep as PromiseRejectedResult).reason;
  }
  if (!ep.value) return { namespace: ns.value };
  try {
    const endpoint = await attachEndpoint(ctx, ep.value.Id, ns.value.Id);
    return { namespace: ctx.namespace(ns.value.Id), endpoint };
  } catch (e) {
    await undo();
    throw e;
  }
}

/**
 * The endpoints (ids) and the namespace deleted: their links and the netns by one ip process, then the records as
 * deleteEndpoint and deleteNamespace leave them. Other endpoints attached to the namespace are detached and survive.
 * What is already gone is no error.
 */
export async function deleteSandbox(ctx: Ctx, namespaceId: string | undefined, endpointIds: string[]): Promise<void> {
  const eps = endpointIds.flatMap((id) => ctx.endpoints.get(id) ?? []);
  const ns = namespaceId === undefined ? undefined : ctx.namespaces.get(namespaceId);
  for (const ep of eps) await removeBackendsFrom(ctx, ep.Id);
  const gone = new Set(eps.map((e) => e.Id));
  const others = (ns?.Endpoints ?? []).filter((id) => !gone.has(id)).flatMap((id) => ctx.endpoints.get(id) ?? []);
  const attached = [...eps.filter((e) => e.NamespaceId), ...others];
  // Deleting the host side destroys the peer inside the namespace with it.
  await k.deleteLinksAndNetns(attached.map((e) => e.HostInterface), ns ? [ns.Name] : []);
  for (const ep of others) {
    const updated: Endpoint = { ...ep };
    delete updated.NamespaceId;
    delete updated.InterfaceName;
    await ctx.store.put('endpoints', ep.Id, updated);
    ctx.endpoints.set(ep.Id, updated);
  }
  for (const ep of eps) {
    // Attached to another namespace than this one (not how systems are made): that namespace's record drops it.
    const home = ep.NamespaceId && ep.NamespaceId !== ns?.Id ? ctx.namespaces.get(ep.NamespaceId) : undefined;
    if (home) {
      const next = { ...home, Endpoints: home.Endpoints.filter((x) => x !== ep.Id) };
      await ctx.store.put('namespaces', home.Id, next);
      ctx.namespaces.set(home.Id, next);
    }
    await forgetEndpoint(ctx, ep);
  }
  if (ns) {
    await ctx.store.remove('namespaces', ns.Id);
    ctx.namespaces.delete(ns.Id);
  }
}
