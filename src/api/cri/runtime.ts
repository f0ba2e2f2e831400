// Version, Status and RuntimeConfig: what the kubelet asks before anything else, and the runtime classes Silo offers.

import type { Services } from '../../host/services.js';
import { VERSION } from '../../host/version.js';
import { invalid } from '../../common/errors.js';
import type { Handler } from './server.js';

/** RuntimeClass handlers: '' (the default) and `runc` are process isolation, as `process` is; `vm` is VM isolation. */
const PROCESS_HANDLERS = ['', 'runc', 'process'];
export const POD_NETWORK = 'nat';

/** The handlers this host offers: `vm` when it has VM isolation (a pod is one utility VM with all its containers in
 *  it, as hcsshim runs Hyper-V-isolated pods). */
export function handlers(isolations: string[]): string[] {
  return [...PROCESS_HANDLERS, ...(isolations.includes('vm') ? ['vm'] : [])];
}

/** The isolation mode of a RuntimeClass handler; a clear error for the others. */
export function isolationOf(handler: string, isolations: string[]): 'process' | 'vm' {
  if (PROCESS_HANDLERS.includes(handler)) return 'process';
  if (handler === 'vm') {
    if (!isolations.includes('vm')) throw invalid('runtime handler "vm" is not available: this host has no VM isolation; use "runc" or "process"');
    return 'vm';
  }
  throw invalid(`unknown runtime handler ${JSON.stringify(handler)}: use ${handlers(isolations).filter(Boolean).map((h) => `"${h}"`).join(', ')}`);
}

export function runtimeHandlers(s: Services): Record<string, Handler> {
  return {
    Version: async () => ({ version: '0.1.0', runtime_name: 'silo', runtime_version: VERSION, runtime_api_version: 'v1' }),
    Status: async (req: { verbose: boolean }) => {
      let netReady = true;
      let netMessage = '';
      try {
        s.network.getNetwork(POD_NETWORK);
      } catch (e) {
        netReady = false;
        netMessage = `the pod network ${POD_NETWORK} is missing`;
      }
      const hs = handlers(s.compute.isolations());
      return {
        status: {
          conditions: [
            { type: 'RuntimeReady', status: true, reason: '', message: '' },
            { type: 'NetworkReady', status: netReady, reason: netReady ? '' : 'NetworkPluginNotReady', message: netMessage },
          ],
        },
        info: req.verbose ? { config: JSON.stringify({ runtimeHandlers: hs.filter(Boolean), podNetwork: POD_NETWORK }) } : {},
        runtime_handlers: hs.map((name) => ({ name, features: { recursive_read_only_mounts: false, user_namespaces: false } })),
        features: { supplemental_groups_policy: false },
      };
    },
    RuntimeConfig: async () => ({ linux: { cgroup_driver: 'CGROUPFS' } }),
    // The pod CIDR is the CNI's business; Silo's pods take addresses from its pod network, so there is nothing to change.
    UpdateRuntimeConfig: async () => ({}),
  };
}
