// How a utility VM is started: QEMU's q35 machine booting the guest kernel directly (PVH entry of the uncompressed
// vmlinux) with Silo's initramfs, a virtio-serial controller carrying the agent's ports, a serial console to a file,
// disk slots, an empty PCIe-to-PCI bridge further disks and shares are hot-added to (measured here: virtio-blk
// hot-added through ACPI shows up in the guest faster than a disk hot-added to a virtio-scsi controller) and one
// virtio NIC. The device set is the same for a cold boot, a template and its clones (a migration stream only loads
// into the machine it was saved from); only backends differ: a clone's NIC gets a tap in the container's namespace (a
// backend carries no state of its own in the stream).
//
// QEMU daemonizes: it is never the daemon's child, so a container survives a daemon SIGKILL; its pid file and
// sockets under the VM's run dir are how a later daemon finds it again.

import { spawn } from 'node:child_process';
import { access, constants, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { SiloError } from '../../common/errors.js';
import type { Qmp } from './qmp.js';
import { qemuShareArgs, type Share } from './virtiofs.js';

export interface VmAssets {
  qemu: string;
  kernel: string;
  initramfs: string;
  accel: 'kvm' | 'tcg';
  /** Why this accelerator (logged once). */
  accelReason: string;
  /** TCG's translated-code cache, MiB (see TCG_CACHE_MIB). */
  tcgCacheMiB: number;
  /** The cache's dead tail is given back now and then (jit.ts): it is then a memfd (split-wx). SILO_VM_TCG_TRIM=off. */
  tcgTrim: boolean;
  /** build/vm/silo-vm-nothp when built: QEMU is exec'd through it, with transparent huge pages off (nothp.c). */
  noThp?: string;
}

/**
 * TCG's translated-code cache. A clone starts with it empty, so everything its guest runs is translated again
 * (≈20 MiB of host code for a container's start and exit): at 8 MiB the cache fills and is flushed within one
 * `run`, which then costs ≈1.8× the CPU of 16 MiB. A start fills the whole cache, which stays resident until the daemon
 * gives its dead part back after a later flush (jit.ts). SILO_VM_TCG_CACHE_MIB sets it.
 */
export const TCG_CACHE_MIB = 16;

export interface VmSize {
  memoryMiB: number;
  cpus: number;
}

/** Disk slots every utility VM has from boot: slot 0 the scratch, slots 1.. the bottom layers. A template's slots
 *  hold placeholders (an empty 1 TiB null device); a clone's hold the container's disks, so nothing is hot-added for
 *  an image of up to DISK_SLOTS - 1 layers (a hot-added disk costs ~0.3–1 s under TCG: the guest runs ACPI code). */
export const DISK_SLOTS = 8;
/**
 * Slots 1… of the PCIe-to-PCI bridge `hp` that disks past the disk slots, a pod's further containers' disks and
 * virtiofs shares are hot-added to (the guest's ACPI hot-plug). One bridge rather than a root port per device: a
 * restore loads every device's state and, in QEMU 7.2, each load rebuilds the address-space maps of all of them, so
 * eight empty root ports cost ≈30 ms of every restore where the bridge costs ≈6 ms (docs/vm.md).
 */
export const HOTPLUG_SLOTS = 31;
export const MAX_DISKS = DISK_SLOTS + HOTPLUG_SLOTS;
/** virtio-serial ports: the agent's three and two for each further container of a pod (pod.ts). */
export const SERIAL_PORTS = 31;
/** The NIC every utility VM has from boot (so a template has it too); the agent gives it the endpoint's MAC. */
export const BOOT_MAC = '02:00:00:00:00:01';
/** The descriptor a clone's QEMU reads its template's device stream from. */
export const INCOMING_FD = 3;

export interface LaunchOptions {
  name: string;
  dir: string;
  logFile: string;
  exitFile: string;
  size: VmSize;
  /** Guest RAM in a file: shared (a template being made) or a private copy-on-write map of it (a clone); or in a
   *  shared memfd (a VM with virtiofs shares: vhost-user backends map guest RAM themselves). */
  ram?: { path: string; share: boolean } | { memfd: true };
  /** vhost-user-fs devices (bind mounts and volumes, virtiofs.ts); they need `ram` shared. */
  shares?: Share[];
  /** A template's device stream (its `state` file), opened on INCOMING_FD for the clone to load (restoreInto). */
  incoming?: string;
  netnsPath?: string;
  /** cgroup.procs files QEMU joins before it starts. */
  cgroupProcs?: string[];
  /** A tap QEMU makes (in netnsPath) as the NIC's backend; none = a NIC with no link. */
  tap?: string;
  /** Backends of the disk slots; a missing one is a placeholder. */
  slots?: { file: string; readOnly: boolean }[];
  /** A spare (spares.ts): its slots are placeholders under raw nodes whose file a claim swaps (swapSlots), and it
   *  runs in a network namespace of its own, where its tap is made, until a claim moves the tap out. */
  spare?: boolean;
}

export const paths = (dir: string) => ({
  qmp: `${dir}/qmp.sock`,
  ctl: `${dir}/ctl.sock`,
  console: `${dir}/console.log`,
  pid: `${dir}/qemu.pid`,
  /** The `-name` of the QEMU this directory belongs to (qemuAlive's check): a claimed spare keeps its own. */
  name: `${dir}/qemu.name`,
});

export const missingQemu = 'vm isolation needs QEMU: apt-get install qemu-system-x86';
export const missingKernel = 'vm isolation needs a guest kernel and the initramfs: apt-get install linux-image-cloud-amd64, then run scripts/setup.sh';

/** Find QEMU, the kernel and the initramfs; one line naming what to install when something is missing. */
export async function findAssets(buildDir: string, env: NodeJS.ProcessEnv = process.env): Promise<VmAssets> {
  const qemu = env.SILO_VM_QEMU ?? '/usr/bin/qemu-system-x86_64';
  if (!(await access(qemu, constants.X_OK).then(() => true, () => false))) throw new SiloError('FailedPrecondition', 'SILO_VM_NO_QEMU', missingQemu);
  const kernel = `${buildDir}/vmlinux`;
  const initramfs = `${buildDir}/initramfs.cpio`;
  for (const f of [kernel, initramfs]) {
    if (!(await stat(f).then((s) => s.size > 0, () => false))) throw new SiloError('FailedPrecondition', 'SILO_VM_NO_KERNEL', missingKernel);
  }
  const { accel, reason } = await detectAccel(env);
  const cache = env.SILO_VM_TCG_CACHE_MIB === undefined ? TCG_CACHE_MIB : Number(env.SILO_VM_TCG_CACHE_MIB);
  if (!Number.isInteger(cache) || cache < 1 || cache > 1024) throw new SiloError('InvalidArgument', 'SILO_INVALID', `SILO_VM_TCG_CACHE_MIB must be a whole number of MiB from 1 to 1024, not "${env.SILO_VM_TCG_CACHE_MIB}"`);
  const trim = env.SILO_VM_TCG_TRIM ?? 'on';
  if (trim !== 'on' && trim !== 'off') throw new SiloError('InvalidArgument', 'SILO_INVALID', `SILO_VM_TCG_TRIM must be on or off, not "${trim}"`);
  const noThp = `${buildDir}/silo-vm-nothp`;
  const hasNoThp = await access(noThp, constants.X_OK).then(() => true, () => false);
  return { qemu, kernel, initramfs, accel, accelReason: reason, tcgCacheMiB: cache, tcgTrim: trim === 'on', ...(hasNoThp ? { noThp } : {}) };
}

/**
 * KVM when it can run a stock guest kernel. A PVM host (kvm_pvm loaded) exposes /dev/kvm but runs only PVM-built
 * guests: Debian's kernel hangs there, so that counts as no KVM.
 */
export async function detectAccel(env: NodeJS.ProcessEnv = process.env): Promise<{ accel: 'kvm' | 'tcg'; reason: string }> {
  const forced = env.SILO_VM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: 'SILO_VM_ACCEL' };
  if (existsSync('/sys/module/kvm_pvm')) return { accel: 'tcg', reason: '/dev/kvm is PVM (kvm_pvm), which cannot run a stock guest kernel' };
  if (!existsSync('/sys/module/kvm_intel') && !existsSync('/sys/module/kvm_amd')) return { accel: 'tcg', reason: 'no kvm_intel or kvm_amd module' };
  const ok = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(() => true, () => false);
  return ok ? { accel: 'kvm', reason: '/dev/kvm' } : { accel: 'tcg', reason: '/dev/kvm is not usable' };
}

export const KERNEL_CMDLINE = 'console=ttyS0 quiet loglevel=4 panic=-1 8250.nr_uarts=1 cryptomgr.notests nokaslr rcupdate.rcu_expedited=1 tsc=reliable';

/**
 * The machine, the same for a template and its clones (only backends and the RAM mapping differ). Lean for host
 * memory: no SATA, SMBus, vmport or SMM (SMM doubles TCG's address spaces), no option ROM on the NIC, the disk slots
 * as integrated endpoints on the root complex (no root port each).
 */
export function qemuArgs(a: VmAssets, o: LaunchOptions): string[] {
  const p = paths(o.dir);
  const mem = `${o.size.memoryMiB}M`;
  const args = [
    '-name', `${o.name},debug-threads=off`,
    '-machine', `q35${o.ram ? ',memory-backend=ram' : ''},sata=off,smbus=off,vmport=off,smm=off`,
    '-accel', a.accel === 'kvm' ? 'kvm' : `tcg,tb-size=${a.tcgCacheMiB}${a.tcgTrim ? ',split-wx=on' : ''}`,
    '-cpu', a.accel === 'kvm' ? 'host' : 'max',
    '-m', mem, '-smp', String(o.size.cpus),
    '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none', '-no-reboot',
    // A clone's kernel is already in the template's RAM: reading 55 MB of vmlinux + initramfs again is for nothing.
    ...(o.incoming ? [] : ['-kernel', a.kernel, '-initrd', a.initramfs, '-append', KERNEL_CMDLINE]),
    '-chardev', `file,id=con,path=${p.console}`, '-serial', 'chardev:con',
    // Ports beyond the agent's three: a log and an exit port hot-added for each further container of a pod's VM.
    '-device', `virtio-serial-pci,id=vs,max_ports=${SERIAL_PORTS}`,
    '-chardev', `socket,id=ctl,path=${p.ctl},server=on,wait=off`, '-device', 'virtserialport,chardev=ctl,name=silo.ctl',
    '-chardev', `file,id=log,path=${o.logFile},append=on`, '-device', 'virtserialport,chardev=log,name=silo.log',
    '-chardev', `file,id=exit,path=${o.exitFile}`, '-device', 'virtserialport,chardev=exit,name=silo.exit',
    // No vnet header: the template's NIC had no backend, so its guest negotiated no offloads; a tap must match that.
    ...(o.tap ? ['-netdev', `tap,id=n0,ifname=${o.tap},script=no,downscript=no,vhost=off,vnet_hdr=off`] : []),
    '-device', `virtio-net-pci,id=nic0,romfile=,mac=${BOOT_MAC}${o.tap ? ',netdev=n0' : ''}`,
    '-qmp', `unix:${p.qmp},server=on,wait=off`,
    '-daemonize', '-pidfile', p.pid,
  ];
  for (let i = 0; i < DISK_SLOTS; i++) {
    const d = o.slots?.[i];
    if (o.spare) {
      // The scratch's slot writable, the layers' read-only, as a claim's files will be (the device takes its
      // read-only flag from its node when QEMU starts).
      args.push('-blockdev', `driver=null-co,node-name=p${i},size=${2 ** 40},read-zeroes=on`, '-blockdev', `driver=raw,node-name=s${i},file=p${i},read-only=${i ? 'on' : 'off'}`);
    } else args.push('-blockdev', d ? JSON.stringify({ driver: 'raw', 'node-name': `s${i}`, 'read-only': d.readOnly, file: { driver: 'file', filename: d.file } }) : `driver=null-co,node-name=s${i},size=${2 ** 40},read-zeroes=on`);
    args.push('-device', `virtio-blk-pci,id=slot${i},drive=s${i},serial=s${i},bus=pcie.0`);
  }
  // Hot-plugging on the root complex needs a root port per device; a bridge behind one takes 31.
  args.push('-device', 'pcie-root-port,id=hprp,chassis=1', '-device', 'pcie-pci-bridge,id=hp,bus=hprp');
  if (o.ram && 'memfd' in o.ram) args.push('-object', `memory-backend-memfd,id=ram,size=${mem},share=on`);
  else if (o.ram) args.push('-object', `memory-backend-file,id=ram,size=${mem},mem-path=${o.ram.path},share=${o.ram.share ? 'on' : 'off'}`);
  if (o.shares?.length) args.push(...qemuShareArgs(o.shares));
  if (o.incoming) args.push('-incoming', 'defer');
  return args;
}

/**
 * Start QEMU detached (it daemonizes once its devices are up) inside the container's network namespace and the host
 * cgroups around it. Resolves with its pid; rejects with QEMU's own message when it refuses to start.
 */
export async function launch(a: VmAssets, o: LaunchOptions): Promise<number> {
  // Without huge pages: QEMU would back its 2 MiB ACPI-tables block, a few pages used, with one (≈2 MiB per VM).
  const qemu = a.noThp ? [a.noThp, a.qemu, ...qemuArgs(a, o)] : [a.qemu, ...qemuArgs(a, o)];
  const cmd = o.netnsPath ? ['nsenter', `--net=${o.netnsPath}`, '--', ...qemu] : o.spare ? ['unshare', '--net', '--', ...qemu] : qemu;
  await writeFile(paths(o.dir).name, `${o.name}\n`);
  // The shell joins the cgroups, then becomes QEMU: every thread QEMU makes is inside them from the start. A clone's
  // template stream is opened on descriptor 3 for it (a missing file: the shell's one-line error, exit 2).
  const script = `for f in $SILO_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"${o.incoming ? ` ${INCOMING_FD}<"$SILO_INCOMING"` : ''}`;
  const child = spawn('/bin/sh', ['-c', script, 'sh', ...cmd], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SILO_CGROUP_PROCS: (o.cgroupProcs ?? []).join(' '), ...(o.incoming ? { SILO_INCOMING: o.incoming } : {}) },
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new SiloError('Internal', 'SILO_VM_QEMU', `QEMU did not start: ${err.trim().split('\n').slice(-2).join(' ') || `exit ${code}`}`);
  const pid = Number((await readFile(paths(o.dir).pid, 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new SiloError('Internal', 'SILO_VM_QEMU', 'QEMU wrote no pid file');
  return pid;
}

/** For a virtio device that can be legacy too, hot-added on the bridge: its I/O window holds eight legacy ones at most. */
export const MODERN_ONLY = { 'disable-legacy': 'on' } as const;

/**
 * `device_add` a PCI device on a free slot of the hot-plug bridge, tried from the first slot up (from the last one down
 * with `fromTop`, so shares and disks meet in the middle).
 */
export async function hotAdd(qmp: Qmp, device: Record<string, unknown>, fromTop = false): Promise<void> {
  const bridge = Array.from({ length: HOTPLUG_SLOTS }, (_, k) => ({ bus: 'hp', addr: `0x${(k + 1).toString(16)}` }));
  // A VM a Silo from before the bridge started (it outlived that daemon) has eight root ports instead, rp9…rp16.
  const ports = Array.from({ length: 8 }, (_, k) => ({ bus: `rp${9 + k}`, addr: '0' }));
  let taken = 0;
  for (const places of [bridge, ports]) {
    for (const at of fromTop ? [...places].reverse() : places) {
      const r = await qmp.execute('device_add', { ...device, ...at }).then(() => 'added' as const, (e: Error) => {
        // A slot another device holds refuses it: the next one is tried.
        if (/in use|occupied|not available/i.test(e.message)) return 'taken' as const;
        if (/Bus '\w+' not found/.test(e.message)) return 'no bus' as const;
        throw e;
      });
      if (r === 'added') return;
      if (r === 'no bus') break;
      taken++;
    }
    if (taken) break;
  }
  throw new Error(`the utility VM has no free hot-plug slot (all ${taken} taken by disks and shares)`);
}

/** Whether `pid` is still the QEMU of this VM (not a recycled pid): its command line names the VM. */
export async function qemuAlive(pid: number | undefined, name: string): Promise<boolean> {
  if (!pid) return false;
  try {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmd.includes(`${name},debug-threads`)) return false;
    const st = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st);
  } catch {
    return false;
  }
}

/**
 * SIGKILL the QEMU whose pid file is in `dir` if it is still that VM (`name`, else the one the dir's qemu.name says),
 * and wait until it is gone.
 */
export async function killQemuIn(dir: string, name?: string): Promise<void> {
  const p = paths(dir);
  const pid = Number((await readFile(p.pid, 'utf8').catch(() => '')).trim());
  const n = name ?? (await readFile(p.name, 'utf8').catch(() => '')).trim();
  if (!n || !(await qemuAlive(pid, n))) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 250 && (await qemuAlive(pid, n)); i++) await new Promise((r) => setTimeout(r, 20));
}

/** The last lines the guest wrote to its console, for an error message. */
export async function consoleTail(dir: string, lines = 8): Promise<string> {
  const t = await readFile(paths(dir).console, 'utf8').catch(() => '');
  return t.replace(/\r/g, '').trim().split('\n').slice(-lines).join(' | ');
}
