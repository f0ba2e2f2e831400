// Namespaces a system shares instead of making its own (a pod's containers join their sandbox's; docker's
// --network/--pid/--ipc/--uts container:<id> and host): resolved at start into paths the backend joins.

import { hostname as hostHostname } from 'node:os';
import { badState } from '../common/errors.js';
import type { EtcFile } from '../network/types.js';
import type { NamespaceJoin } from './backend.js';
import type { SystemNetworking } from './networking.js';
import type { ComputeSystemDocument, ComputeSystemRecord } from './types.js';

type Kind = 'pid' | 'ipc' | 'uts';
export interface Joins { namespaces: Partial<Record<Kind | 'network', NamespaceJoin>>; netnsPath?: string; etcFiles: EtcFile[] }

/** True when the system gets no namespace or endpoint of its own from the network service. */
export const sharesNetwork = (doc: ComputeSystemDocument) => (doc.Container.Namespaces?.Network?.Mode ?? 'private') !== 'private';

/** The hostname a system that shares the host's or another system's UTS or network namespace shows. */
export function sharedHostname(doc: ComputeSystemDocument, find: (id: string) => ComputeSystemRecord): string | undefined {
  const ns = doc.Container.Namespaces ?? {};
  for (const r of [ns.Uts, ns.Network]) {
    if (r?.Mode === 'host') return hostHostname();
    if (r?.Mode === 'system') return find(r.Target!).Document.Container.GuestOs.HostName;
  }
  return undefined;
}

const HOST_ETC: EtcFile[] = [
  { hostPath: '/etc/hosts', containerPath: '/etc/hosts' },
  { hostPath: '/etc/resolv.conf', containerPath: '/etc/resolv.conf' },
];

export async function resolveJoins(rec: ComputeSystemRecord, find0: (id: string) => ComputeSystemRecord, net: SystemNetworking, depth = 0): Promise<Joins> {
  // The system whose namespace this one shares may have been removed since: say so, not just "no such container".
  const find = (id: string) => {
    try {
      return find0(id);
    } catch {
      throw badState(`cannot start ${rec.Name}: the system whose namespace it shares (${id.slice(0, 12)}) no longer exists`);
    }
  };
  const ns = rec.Document.Container.Namespaces ?? {};
  const namespaces: Joins['namespaces'] = {};
  for (const [kind, ref] of [['pid', ns.Pid], ['ipc', ns.Ipc], ['uts', ns.Uts]] as const) {
    if (!ref || ref.Mode === 'private') continue;
    if (ref.Mode === 'host') namespaces[kind] = { host: true };
    else if (ref.Mode === 'path') namespaces[kind] = { path: ref.Target! };
    else {
      const t = find(ref.Target!);
      if (t.State !== 'Running' || !t.Pid) throw badState(`cannot join the ${kind} namespace of ${t.Name}: it is not running`);
      namespaces[kind] = { path: `/proc/${t.Pid}/ns/${kind}` };
    }
  }
  const n = ns.Network;
  if (!n || n.Mode === 'private') return { namespaces, ...(await net.runtime(rec.Document.Container.Networking)) };
  if (n.Mode === 'host') return { namespaces: { ...namespaces, network: { host: true } }, etcFiles: HOST_ETC };
  if (n.Mode === 'path') return { namespaces, netnsPath: n.Target, etcFiles: [] };
  // Another system's: its namespace (or what it shares in turn), its resolv.conf and hosts.
  if (depth > 8) throw badState(`network namespace of ${rec.Name}: too many systems in a chain`);
  const t = await resolveJoins(find(n.Target!), find0, net, depth + 1);
  const network = t.namespaces.network;
  return { namespaces: { ...namespaces, ...(network ? { network } : {}) }, netnsPath: t.netnsPath, etcFiles: t.etcFiles };
}
