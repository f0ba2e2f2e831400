// A pod's utility VM holds more than its own container (as hcsshim runs every container of a Hyper-V-isolated pod in
// one utility VM): each further container ("guest" here) gets its scratch and the layers the VM does not already have
// hot-added as read-only/read-write virtio-blk disks on the hot-plug bridge, and a log and an exit port hot-added to
// the virtio-serial controller (files QEMU writes, so both keep going while no daemon runs). The agent mounts its
// root and runs its processes under the container id `ctr`. Every QEMU object of a guest is named after `ctr`, so
// whatever a crash left of it can be found and removed from QEMU itself.

import type { Qmp } from './qmp.js';
import { hotAdd, MODERN_ONLY } from './qemu.js';

/** What the host keeps of a container in another system's VM (written before anything is made in the VM). */
export interface Guest {
  /** The system whose utility VM it runs in. */
  host: string;
  /** Its container id in the guest (the agent's; names its QEMU objects). */
  ctr: number;
  /** The agent's process id of its init process. */
  init: number;
  /** Where its log port writes: the CRI's log path or the system's own log file. */
  logFile: string;
  memoryLimit: number;
  /** Shares the pod's PID namespace. */
  sharePid: boolean;
}

const diskId = (ctr: number, k: number) => `g${ctr}-${k}`;
const portIds = (ctr: number) => ({ log: `gl${ctr}`, exit: `ge${ctr}` });

/** Layer disks the VM has of its own (its slots and hot-added layers), by file: a guest uses them as they are. */
export async function ownLayers(qmp: Qmp): Promise<Map<string, string>> {
  const nodes = await qmp.execute<{ 'node-name': string; file: string; ro: boolean }[]>('query-named-block-nodes', { flat: true });
  const out = new Map<string, string>();
  for (const n of nodes) if (n.ro && /^(s[1-9]\d*|h\d+)$/.test(n['node-name'])) out.set(n.file, n['node-name']);
  return out;
}

/** Hot-add the guest's disks on free slots of the hot-plug bridge; returns their serials in order. */
export async function plugDisks(qmp: Qmp, ctr: number, disks: { file: string; readOnly: boolean }[]): Promise<string[]> {
  const serials: string[] = [];
  for (const [k, d] of disks.entries()) {
    const id = diskId(ctr, k);
    await qmp.execute('blockdev-add', { driver: 'raw', 'node-name': id, 'read-only': d.readOnly, file: { driver: 'file', filename: d.file } });
    await hotAdd(qmp, { driver: 'virtio-blk-pci', ...MODERN_ONLY, id: `d-${id}`, drive: id, serial: id });
    serials.push(id);
  }
  return serials;
}

/** Hot-add the guest's log and exit ports (files on the host). */
export async function plugPorts(qmp: Qmp, ctr: number, logFile: string, exitFile: string): Promise<void> {
  const p = portIds(ctr);
  await qmp.execute('chardev-add', { id: p.log, backend: { type: 'file', data: { out: logFile, append: true } } });
  await qmp.execute('device_add', { driver: 'virtserialport', id: `p-${p.log}`, chardev: p.log, name: `silo.log.${ctr}`, bus: 'vs.0' });
  await qmp.execute('chardev-add', { id: p.exit, backend: { type: 'file', data: { out: exitFile } } });
  await qmp.execute('device_add', { driver: 'virtserialport', id: `p-${p.exit}`, chardev: p.exit, name: `silo.exit.${ctr}`, bus: 'vs.0' });
}

/** Point the guest's log port at its file again (the file was rotated). */
export function reopenLog(qmp: Qmp, ctr: number, logFile: string): Promise<unknown> {
  return qmp.execute('chardev-change', { id: portIds(ctr).log, backend: { type: 'file', data: { out: logFile, append: true } } });
}

/** Unplug whatever the VM has of the guest (found by name, so a half-made one goes too) and wait until it is gone. */
export async function unplug(qmp: Qmp, ctr: number, timeoutMs = 15_000): Promise<void> {
  const p = portIds(ctr);
  const mine = (name: string) => name.startsWith(`d-g${ctr}-`) || name === `p-${p.log}` || name === `p-${p.exit}`;
  const devices = async () => (await qmp.execute<{ name: string }[]>('qom-list', { path: '/machine/peripheral' })).map((d) => d.name).filter(mine);
  for (const id of await devices()) await qmp.execute('device_del', { id }).catch(() => {});
  // The guest ejects a PCI device through ACPI (it takes a moment under TCG); serial ports go at once.
  const deadline = Date.now() + timeoutMs;
  while ((await devices()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const nodes = await qmp.execute<{ 'node-name': string }[]>('query-named-block-nodes', { flat: true });
  for (const n of nodes) if (n['node-name'].startsWith(`g${ctr}-`)) await qmp.execute('blockdev-del', { 'node-name': n['node-name'] }).catch(() => {});
  const chardevs = await qmp.execute<{ label: string }[]>('query-chardev');
  for (const c of chardevs) if (c.label === p.log || c.label === p.exit) await qmp.execute('chardev-remove', { id: c.label }).catch(() => {});
}
