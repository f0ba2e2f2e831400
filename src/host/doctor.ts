// `silo doctor`: each service reports the kernel objects and processes with its names that none of its objects owns,
// and removes only those; the doctor adds the reports up. Storage judges its scratch devices by the compute
// service's systems (which it is told, as for pruning), never by looking at compute's records itself.

import type { Finding } from '../common/leaks.js';
import type { ComputeService } from '../compute/service.js';
import type { NetworkService } from '../network/types.js';
import type { StorageService } from '../storage/types.js';

export type { Finding };

export interface DoctorServices {
  compute: Pick<ComputeService, 'leaks' | 'fixLeaks' | 'list'>;
  storage: Pick<StorageService, 'leaks' | 'fixLeaks'>;
  network: Pick<NetworkService, 'leaks' | 'fixLeaks'>;
}

export async function doctor(svc: DoctorServices, fix: boolean): Promise<Finding[]> {
  const systems = new Set(svc.compute.list(true).map((s) => s.Id));
  const reports = await Promise.all([svc.compute.leaks(), svc.storage.leaks({ inUse: (id) => systems.has(id) }), svc.network.leaks()]);
  if (fix) {
    // Processes and mounts of compute go before storage's devices under them, links last.
    await svc.compute.fixLeaks(reports[0]);
    await svc.storage.fixLeaks(reports[1]);
    await svc.network.fixLeaks(reports[2]);
  }
  return reports.flat();
}
