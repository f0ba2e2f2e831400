// What a vm-isolated system cannot have yet, refused at create with one line (never silently dropped).

import { invalid } from '../../common/errors.js';
import type { ComputeSystemDocument } from '../types.js';

/** `doc`'s namespace targets and HostingSystemId are system ids by now (the compute service resolved them). */
export function checkVmDocument(doc: ComputeSystemDocument): void {
  const c = doc.Container;
  const no = (what: string) => {
    throw invalid(`vm isolation does not support ${what} yet`);
  };
  const hosted = doc.HostingSystemId !== undefined;
  // Bind mounts and volumes are virtiofs shares (virtiofs.ts, private whole directories) or, in a pod's VM, binds
  // through the pod's share (podshare.ts: directories and single files).
  for (const m of c.MappedDirectories ?? []) {
    if (m.Subpath !== undefined) no('volume subpaths');
    if (m.Propagation && m.Propagation !== 'private' && m.Propagation !== 'rprivate') no(`${m.Propagation} mount propagation`);
  }
  if (c.Tmpfs?.length) no('tmpfs mounts');
  if (c.Devices?.length) no('devices');
  if (c.BlockIO && Object.values(c.BlockIO).some((l) => l?.length)) no('block I/O limits');
  if (c.Ulimits?.length) no('ulimits');
  // A container in a pod's VM shares the VM's network, IPC and UTS namespaces, and its pod's PID namespace or its own.
  for (const [kind, ref] of Object.entries(c.Namespaces ?? {})) {
    if (!ref) continue;
    const inPod = hosted && ref.Mode === 'system' && ref.Target === doc.HostingSystemId;
    if (!inPod && !(hosted && kind === 'Pid' && ref.Mode === 'private')) no(hosted ? `the ${kind.toLowerCase()} namespace ${ref.Mode === 'host' ? "of the host in a VM pod" : 'of another container'}` : 'joining other namespaces');
  }
  checkSecurity(c.Security, no);
  if (hosted && doc.VirtualMachine?.KernelPackage) no("a guest kernel of its own in a pod (it runs in its pod's utility VM)");
  if (hosted) {
    if (c.Logging && !Object.keys(c.Logging).every((k) => k === 'Path')) no('a log path or driver');
  } else {
    // Rotation (max-size, max-file) holds: the log is a file QEMU writes in the daemon's state, rotated by the daemon.
    if (c.Logging?.Path) no('a log path');
    if (c.Logging?.Driver === 'none') no('the none log driver');
  }
  if (c.Processor?.CpusetCpus || c.Processor?.Weight) no('cpuset or CPU weight');
  if (c.Memory?.Swappiness !== undefined) no('memory swappiness');
  if (c.Memory?.ReservationInBytes !== undefined) no('a memory reservation');
  if (c.ShmSizeInBytes) no('--shm-size');
  if (c.Sysctls && Object.keys(c.Sysctls).length) no('sysctls');
  if (c.OomScoreAdj !== undefined && !hosted) no('an OOM score');
  if (c.CgroupParent && hosted) no('a cgroup parent for a container in a pod (its pod VM has it)');
  if (c.Processor?.Shares && !hosted) no('CPU shares');
  if (doc.Init && hosted) no('--init in a pod (the pod has one)');
  if ((c.Networking?.Endpoints?.length ?? 0) > 1) no('more than one network');
  if (hosted && c.Networking && (c.Networking.Network || c.Networking.PortMappings?.length)) no('a network of its own in a pod (it has its pod\'s)');
}

/** The security settings a guest process gets: its user and group, numeric supplemental groups, no_new_privs, masked
 *  and read-only paths; seccomp only unconfined. */
function checkSecurity(s: ComputeSystemDocument['Container']['Security'], no: (what: string) => never): void {
  for (const [k, v] of Object.entries(s ?? {})) {
    if (v === undefined || ['RunAsUser', 'RunAsGroup', 'NoNewPrivileges', 'MaskedPaths', 'ReadonlyPaths'].includes(k)) continue;
    if (k === 'Seccomp' && (v as { Profile: string }).Profile === 'unconfined') continue;
    if (k === 'Privileged' && v === false) continue;
    if (k === 'SupplementalGroups' && (v as unknown[]).every((g) => typeof g === 'number')) continue;
    no(`the security option ${k}`);
  }
}
