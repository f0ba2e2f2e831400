// The one place a create specification is judged: its shape against the schema (whichever door it came through),
// then every rule that needs more than a schema, before anything is made. Messages are one line and name the field.

import { MIN_LOG_SIZE } from '../../common/logopts.js';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { FormatRegistry } from '@sinclair/typebox';
import { isIP } from 'node:net';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { invalid } from '../../common/errors.js';
import { hostCpuCount, parseNofileHard, resourcesOf } from '../resolve.js';
import { normalizeSignal } from '../signals.js';
import type { ComputeSystemDocument } from '../types.js';
import { CreateSpec, type NamespaceRef } from './schema.js';
import { capName, daemonCapabilities } from './capabilities.js';

/** The init `Init: true` runs as PID 1: Debian's statically linked tini (document.ts binds it in). */
const INIT_BINARY = '/usr/bin/tini-static';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
if (!FormatRegistry.Has('ipv4')) FormatRegistry.Set('ipv4', (v) => IPV4.test(v));
if (!FormatRegistry.Has('ipv6')) FormatRegistry.Set('ipv6', (v) => isIP(v) === 6);

export const MIN_SCRATCH_BYTES = 16 * 1024 * 1024;
/** Compiled on the first create, not at the daemon's start. */
let checker: ReturnType<typeof TypeCompiler.Compile<typeof CreateSpec>> | undefined;

/** The spec's shape; the first problem as a one-line invalid-argument error naming the field. */
export function checkSpecShape(body: unknown): CreateSpec {
  checker ??= TypeCompiler.Compile(CreateSpec);
  if (checker.Check(body)) return body;
  const e = checker.Errors(body).First()!;
  const field = e.path.replace(/^\//, '').replace(/\//g, '.') || 'body';
  throw invalid(`invalid create specification: ${field}: ${e.message}`);
}

/** The daemon's own RLIMIT_NOFILE hard limit: no container can be given more (root lacks CAP_SYS_RESOURCE here). */
const nofileHard = () => parseNofileHard(readFileSync('/proc/self/limits', 'utf8'));

const RLIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as'];
const TMPFS_FLAGS = new Set(['ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'atime', 'noatime', 'relatime', 'strictatime', 'nr_inodes']);

function checkNamespace(kind: string, ref: NamespaceRef | undefined): void {
  if (!ref) return;
  const needsTarget = ref.Mode === 'system' || ref.Mode === 'path';
  if (needsTarget && !ref.Target) throw invalid(`Namespaces.${kind}: mode ${ref.Mode} needs a Target`);
  if (!needsTarget && ref.Target !== undefined) throw invalid(`Namespaces.${kind}: mode ${ref.Mode} takes no Target`);
  if (ref.Mode === 'path' && !isAbsolute(ref.Target!)) throw invalid(`Namespaces.${kind}: path ${JSON.stringify(ref.Target)} must be absolute`);
}

const IPC_SYSCTLS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** Only sysctls of a namespace the system has of its own may be set: setting one of the host's would change the host. */
export function checkSysctl(key: string, value: string, ns: { Network?: NamespaceRef; Ipc?: NamespaceRef; Uts?: NamespaceRef }): void {
  const host = (r?: NamespaceRef) => r?.Mode === 'host';
  if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$/.test(key) || /[\n\0]/.test(value)) throw invalid(`invalid sysctl ${JSON.stringify(key)}`);
  if (key.startsWith('net.')) {
    if (host(ns.Network)) throw invalid(`sysctl ${key} is not allowed with the host's network namespace`);
  } else if (IPC_SYSCTLS.includes(key) || key.startsWith('fs.mqueue.')) {
    if (host(ns.Ipc)) throw invalid(`sysctl ${key} is not allowed with the host's IPC namespace`);
  } else if (key === 'kernel.domainname' || key === 'kernel.hostname') {
    if (host(ns.Uts)) throw invalid(`sysctl ${key} is not allowed with the host's UTS namespace`);
  } else {
    throw invalid(`sysctl ${key} is not namespaced: it would change the host`);
  }
}

export function checkTmpfsOptions(opts: string[], where: string): void {
  for (const o of opts) {
    const [k, v] = o.split('=', 2);
    if (v === undefined ? TMPFS_FLAGS.has(k) : k === 'size' ? /^\d+[kmg]?$/i.test(v) : k === 'mode' ? /^[0-7]{3,4}$/.test(v) : (k === 'uid' || k === 'gid' || k === 'nr_inodes') && /^\d+$/.test(v)) continue;
    throw invalid(`${where}: unsupported tmpfs option ${JSON.stringify(o)}`);
  }
}

/** A Debian kernel image package's name, as a utility VM's own kernel (Document.VirtualMachine.KernelPackage). */
export const KERNEL_PACKAGE_RE = /^linux-image-[a-z0-9][a-z0-9.+-]{0,100}$/;

/** A guest kernel is the utility VM's: only a vm-isolated system with a VM of its own names one. */
function checkGuestKernel(doc: ComputeSystemDocument): void {
  if (doc.VirtualMachine?.HostedMounts && (doc.Isolation !== 'vm' || doc.HostingSystemId !== undefined)) throw invalid('VirtualMachine.HostedMounts is for a vm-isolated system with a utility VM of its own');
  const k = doc.VirtualMachine?.KernelPackage;
  if (k === undefined) return;
  if (doc.Isolation !== 'vm') throw invalid(`a guest kernel (${k}) is for vm isolation only: add --isolation vm (docker: --isolation hyperv)`);
  if (!KERNEL_PACKAGE_RE.test(k)) throw invalid(`invalid guest kernel package "${k}": name a Debian kernel package, e.g. linux-image-6.1.0-NN-cloud-amd64`);
}

export function checkIsolation(isolation: unknown, isolations: readonly string[]): void {
  if (typeof isolation === 'string' && isolations.includes(isolation)) return;
  const use = isolations.map((i) => JSON.stringify(i)).join(' or ');
  if (isolation === 'vm' || isolation === 'process') throw invalid(`isolation "${isolation}" is not available on this host; use ${use}`);
  throw invalid(`unknown isolation ${JSON.stringify(isolation)}: use ${use}`);
}

/** Everything about a full document that needs no other system and no kernel; files the spec names must exist.
 *  `isolations`: the modes this daemon has a backend for. */
export async function validateDocument(doc: ComputeSystemDocument, isolations: readonly string[], hostCpus = hostCpuCount()): Promise<void> {
  checkIsolation(doc.Isolation, isolations);
  checkGuestKernel(doc);
  if (doc.StopSignal) normalizeSignal(doc.StopSignal);
  const c = doc.Container;
  resourcesOf(c);
  const rp = doc.RestartPolicy;
  if (rp && !['no', 'always', 'unless-stopped', 'on-failure'].includes(rp.Name)) throw invalid(`invalid restart policy ${JSON.stringify(rp.Name)}: use no, always, unless-stopped or on-failure`);
  if (rp && rp.Name !== 'no' && doc.AutoRemove) throw invalid('a container with a restart policy cannot be removed automatically (--rm)');
  const scratch = c.Storage.ScratchSizeInBytes!;
  if (!Number.isInteger(scratch) || scratch < MIN_SCRATCH_BYTES) throw invalid('scratch size must be at least 16MB');
  // A utility VM's scratch is a disk of the VM: there is no host tmpfs to give it.
  if (c.Storage.ScratchInMemory && doc.Isolation === 'vm') throw invalid('an in-memory scratch is for process isolation only');
  for (const set of c.Processor?.CpusetCpus?.split(',') ?? []) {
    const [a, b = a] = set.split('-').map(Number);
    if (a > b || b >= hostCpus) throw invalid(`Processor.CpusetCpus ${JSON.stringify(c.Processor!.CpusetCpus)}: this host has CPUs 0-${hostCpus - 1}`);
  }
  if (doc.Init) {
    try {
      await stat(INIT_BINARY);
    } catch {
      throw invalid(`an init process needs ${INIT_BINARY} on the host (Debian package tini)`);
    }
  }
  if (c.ShmSizeInBytes !== undefined && c.ShmSizeInBytes < 4096) throw invalid('ShmSizeInBytes must be at least 4096');

  const ns = c.Namespaces ?? {};
  checkNamespace('Network', ns.Network);
  checkNamespace('Pid', ns.Pid);
  checkNamespace('Ipc', ns.Ipc);
  checkNamespace('Uts', ns.Uts);
  const n = c.Networking ?? {};
  if (ns.Network && ns.Network.Mode !== 'private') {
    const own = (['Network', 'IpAddress', 'Aliases', 'PortMappings', 'MacAddress', 'Dns', 'ExtraHosts'] as const).filter((k) => n[k] !== undefined);
    if (own.length) throw invalid(`conflicting options: Networking.${own[0]} and a shared network namespace (Namespaces.Network ${ns.Network.Mode})`);
  }
  if (n.Network === 'none') {
    const own = (['IpAddress', 'Aliases', 'PortMappings', 'MacAddress', 'Dns', 'ExtraHosts'] as const).filter((k) => n[k] !== undefined && !(Array.isArray(n[k]) && !(n[k] as unknown[]).length));
    if (own.length) throw invalid(`conflicting options: Networking.${own[0]} and network none`);
  }
  for (const h of n.ExtraHosts ?? []) if (!IPV4.test(h.IpAddress) && !/^[0-9a-fA-F:]+$/.test(h.IpAddress)) throw invalid(`invalid extra host ${h.Name}: ${JSON.stringify(h.IpAddress)} is not an IP address`);
  if (n.MacAddress && parseInt(n.MacAddress.slice(0, 2), 16) & 1) throw invalid(`invalid MAC address ${n.MacAddress}: a multicast address`);

  const s = c.Security ?? {};
  for (const cap of s.CapDrop ?? []) if (cap.toUpperCase() !== 'ALL') capName(cap);
  for (const cap of s.CapAdd ?? []) {
    if (cap.toUpperCase() === 'ALL') continue;
    if (!daemonCapabilities().includes(capName(cap))) throw invalid(`capability ${capName(cap)} cannot be granted: the daemon itself does not hold it on this host`);
  }
  if (s.Seccomp) {
    if (s.Seccomp.Profile === 'localhost') {
      if (!s.Seccomp.LocalhostPath) throw invalid('Security.Seccomp: profile localhost needs LocalhostPath');
      if (!(await stat(s.Seccomp.LocalhostPath).then((x) => x.isFile(), () => false))) throw invalid(`Security.Seccomp: no profile file at ${s.Seccomp.LocalhostPath}`);
    } else if (s.Seccomp.LocalhostPath !== undefined) throw invalid(`Security.Seccomp: profile ${s.Seccomp.Profile} takes no LocalhostPath`);
  }
  if (s.RunAsGroup !== undefined && s.RunAsUser === undefined) throw invalid('Security.RunAsGroup needs Security.RunAsUser');

  for (const [k, v] of Object.entries(c.Sysctls ?? {})) checkSysctl(k, v, ns);
  if (c.CgroupParent && c.CgroupParent.split('/').some((p) => p === '.' || p === '..')) throw invalid(`CgroupParent ${JSON.stringify(c.CgroupParent)}: no . or .. components`);

  const log = c.Logging ?? {};
  if (log.Driver === 'none' && (log.Path || log.MaxSizeInBytes !== undefined || log.MaxFiles !== undefined)) throw invalid('Logging: driver none keeps no log, so it takes no Path, MaxSizeInBytes or MaxFiles');
  if (log.MaxSizeInBytes !== undefined && log.MaxSizeInBytes !== -1 && log.MaxSizeInBytes < MIN_LOG_SIZE) throw invalid(`Logging.MaxSizeInBytes: at least ${MIN_LOG_SIZE} bytes (or -1 for no limit)`);
  if (log.Path && !(await stat(dirname(log.Path)).then((x) => x.isDirectory(), () => false))) throw invalid(`Logging.Path: directory ${dirname(log.Path)} does not exist`);

  for (const t of c.Tmpfs ?? []) {
    if (t.ContainerPath === '/') throw invalid('Tmpfs: the container path must not be /');
    checkTmpfsOptions(t.Options ?? [], `Tmpfs ${t.ContainerPath}`);
  }
  for (const u of c.Ulimits ?? []) {
    if (!RLIMITS.includes(u.Name)) throw invalid(`invalid ulimit ${JSON.stringify(u.Name)}: use one of ${RLIMITS.join(', ')}`);
    if (u.Soft < 0 || u.Hard < 0) throw invalid(`ulimit ${u.Name}: unlimited (-1) is not supported; give a number`);
    if (u.Name === 'nofile' && u.Hard > nofileHard()) throw invalid(`ulimit nofile: hard limit ${u.Hard} is above the daemon's own (${nofileHard()}), which root here cannot raise`);
    if (u.Soft > u.Hard) throw invalid(`invalid ulimit ${u.Name}: soft limit ${u.Soft} is above hard limit ${u.Hard}`);
  }
  for (const d of c.Devices ?? []) {
    const st = await stat(d.PathOnHost).catch(() => undefined);
    if (!st || !(st.isCharacterDevice() || st.isBlockDevice())) throw invalid(`error gathering device information while adding device ${JSON.stringify(d.PathOnHost)}: not a device node`);
  }
  for (const [kind, list] of Object.entries(c.BlockIO ?? {})) {
    for (const d of list ?? []) {
      const st = await stat(d.Path).catch(() => undefined);
      if (!st?.isBlockDevice()) throw invalid(`BlockIO.${kind}: ${d.Path} is not a block device`);
    }
  }
  for (const m of c.MappedDirectories ?? []) {
    if (!isAbsolute(m.HostPath)) throw invalid(`invalid mount: host path ${JSON.stringify(m.HostPath)} must be absolute`);
    if (!isAbsolute(m.ContainerPath) || m.ContainerPath === '/') throw invalid(`invalid mount: container path ${JSON.stringify(m.ContainerPath)} must be absolute and not /`);
    if (m.Subpath !== undefined && (isAbsolute(m.Subpath) || m.Subpath.split('/').includes('..'))) throw invalid(`invalid mount: subpath ${JSON.stringify(m.Subpath)} must be relative, without ".."`);
    if (m.Subpath !== undefined && m.PopulateFromImage) throw invalid(`invalid mount: ${m.ContainerPath}: PopulateFromImage fills a whole directory, not a subpath`);
    try {
      await stat(m.HostPath);
    } catch {
      throw invalid(`invalid mount: host path ${m.HostPath} does not exist`);
    }
  }
}
