// Version, Status and RuntimeConfig: what the kubelet asks before anything else, and the runtime classes Silo offers.

import type { Services } from '../../host/services.js';
import { VERSION } from '../../host/version.js';
import { invalid } from '../../common/errors.js';
import type { Handler } from './server.js';

/** RuntimeClass handlers: '' (the default) and `runc` are process isolation, as `process` is. */
export const HANDLERS = ['', 'runc', 'process'];
export const POD_NETWORK = 'nat';

/** The isolation mode of a RuntimeClass handler; a clear error for the others. */
export function isolationOf(handler: string): 'process' {
  if (HANDLERS.includes(handler)) return 'process';
  if (handler === 'vm') throw invalid('runtime handler "vm" is not available: VM isolation is not built on this host; use "runc" or "process"');
  throw invalid(`unknown runtime handler ${JSON.stringify(handler)}: use "runc" or "process"`);
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
      return {
        status: {
          conditions: [
            { type: 'RuntimeReady', status: true, reason: '', message: '' },
            { type: 'NetworkReady', status: netReady, reason: netReady ? '' : 'NetworkPluginNotReady', message: netMessage },
          ],
        },
        info: req.verbose ? { config: JSON.stringify({ runtimeHandlers: HANDLERS.filter(Boolean), podNetwork: POD_NETWORK }) } : {},
        runtime_handlers: HANDLERS.map((name) => ({ name, features: { recursive_read_only_mounts: false, user_namespaces: false } })),
        features: { supplemental_groups_policy: false },
      };
    },
    RuntimeConfig: async () => ({ linux: { cgroup_driver: 'CGROUPFS' } }),
    // The pod CIDR is the CNI's business; Silo's pods take addresses from its pod network, so there is nothing to change.
    UpdateRuntimeConfig: async () => ({}),
  };
}
