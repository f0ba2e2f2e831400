// What a vm-isolated system cannot have yet, refused at create with one line (never silently dropped).

import { invalid } from '../../common/errors.js';
import type { ComputeSystemDocument } from '../types.js';

export function checkVmDocument(doc: ComputeSystemDocument): void {
  const c = doc.Container;
  const no = (what: string) => {
    throw invalid(`vm isolation does not support ${what} yet`);
  };
  if (c.MappedDirectories?.length) no('bind mounts and volumes (-v)');
  if (c.Tmpfs?.length) no('tmpfs mounts');
  if (c.Devices?.length) no('devices');
  if (c.Ulimits?.length) no('ulimits');
  if (c.Namespaces && Object.keys(c.Namespaces).length) no('joining other namespaces');
  if (c.Security && Object.keys(c.Security).length) no('security options');
  if (c.Logging && Object.keys(c.Logging).length) no('a log path or driver');
  if (c.Processor?.CpusetCpus || c.Processor?.Weight) no('cpuset or CPU weight');
  if (c.Memory?.Swappiness !== undefined) no('memory swappiness');
  if (c.ShmSizeInBytes) no('--shm-size');
  if (c.Sysctls && Object.keys(c.Sysctls).length) no('sysctls');
  if (c.OomScoreAdj !== undefined) no('an OOM score');
  if (c.CgroupParent) no('a cgroup parent');
  if (c.Processor?.Shares) no('CPU shares');
  if (doc.Init) no('--init (the guest agent reaps processes)');
  if ((c.Networking?.Endpoints?.length ?? 0) > 1) no('more than one network');
}
