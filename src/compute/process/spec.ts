// OCI runtime spec (config.json / process.json) generation. Pure: everything read from disk (the user's passwd
// entry, the daemon's RLIMIT_NOFILE hard limit) is passed in, so the hardening is unit-testable.

import { posix } from 'node:path';
import { invalid } from '../../common/errors.js';
import type { Security, Ulimit } from '../spec/schema.js';
import { capName } from '../spec/capabilities.js';
import type { InitOptions, ProcessParams, Resources } from '../backend.js';
import type { ResolvedUser } from '../user.js';
import { defaultSeccompProfile } from './seccomp.js';
import { buildEnv, checkCwd, NOFILE_CAP } from '../resolve.js';

/** Docker's default capability set. */
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];


export interface SpecContext {
  cgroupParent: string;
  /** The daemon's RLIMIT_NOFILE hard limit: root lacks CAP_SYS_RESOURCE here, so runc cannot raise past it. */
  nofileHard: number;
  user: ResolvedUser;
  /** Capabilities the daemon holds: a privileged container gets these, and no container more. */
  daemonCaps?: string[];
  /** Device nodes to create in the container (resolved from the host by the backend). */
  devices?: OciDevice[];
  /** The profile of `Seccomp.Profile: localhost`, read by the backend. */
  seccompProfile?: unknown;
  /** The daemon's own oom_score_adj: a container's may not go below it (that needs CAP_SYS_RESOURCE). */
  daemonOomScoreAdj?: number;
  /** OCI linux.resources.blockIO (throttle*Device), device numbers read by the backend. */
  blockIO?: Record<string, unknown>;
}

export interface OciDevice { path: string; type: 'c' | 'b'; major: number; minor: number; fileMode: number; uid: number; gid: number; access: string }

/** What a process gets of the container's security context; exec processes get the same as init. */
export interface ProcessSecurity { capabilities: string[]; noNewPrivileges: boolean; rlimits: { type: string; hard: number; soft: number }[] }

/** Docker's rules: privileged = all the daemon holds; else the default set, ALL or names dropped, then added. */
export function capabilitySet(sec: Security | undefined, daemonCaps: string[] | undefined): string[] {
  const held = daemonCaps ?? DEFAULT_CAPS;
  if (sec?.Privileged) return [...held];
  const all = (l?: string[]) => (l ?? []).some((c) => c.toUpperCase() === 'ALL');
  const names = (l?: string[]) => (l ?? []).filter((c) => c.toUpperCase() !== 'ALL').map(capName);
  let caps = all(sec?.CapDrop) ? [] : DEFAULT_CAPS.filter((c) => !names(sec?.CapDrop).includes(c));
  const add = all(sec?.CapAdd) ? held : names(sec?.CapAdd);
  for (const c of add) {
    if (!held.includes(c)) throw invalid(`capability ${c} cannot be granted: the daemon itself does not hold it on this host`);
    if (!caps.includes(c)) caps = [...caps, c];
  }
  return caps;
}

/** RLIMIT_NOFILE by default (capped by the daemon's own hard limit), replaced or joined by the caller's ulimits. */
export function rlimitsOf(ulimits: Ulimit[] | undefined, nofileHard: number): ProcessSecurity['rlimits'] {
  const nofile = Math.min(NOFILE_CAP, nofileHard);
  const out = new Map<string, { type: string; hard: number; soft: number }>([['nofile', { type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }]]);
  for (const u of ulimits ?? []) {
    if (u.Soft < 0 || u.Hard < 0) throw invalid(`ulimit ${u.Name}: unlimited (-1) is not supported; give a number`);
    if (u.Name === 'nofile' && u.Hard > nofileHard) throw invalid(`ulimit nofile: hard limit ${u.Hard} is above the daemon's own (${nofileHard}), which root here cannot raise`);
    out.set(u.Name, { type: `RLIMIT_${u.Name.toUpperCase()}`, hard: u.Hard, soft: u.Soft });
  }
  return [...out.values()];
}

export function processSecurity(o: Pick<InitOptions, 'security' | 'ulimits'>, ctx: Pick<SpecContext, 'daemonCaps' | 'nofileHard'>): ProcessSecurity {
  const sec = o.security;
  return {
    capabilities: capabilitySet(sec, ctx.daemonCaps),
    noNewPrivileges: sec?.NoNewPrivileges ?? !sec?.Privileged,
    rlimits: rlimitsOf(o.ulimits, ctx.nofileHard),
  };
}

/** The `process` object, shared by config.json (init) and process.json (exec). */
export function buildProcess(p: ProcessParams, hostname: string, ctx: Omit<SpecContext, 'cgroupParent'>, ps: ProcessSecurity = processSecurity({}, ctx)) {
  if (!p.args.length) throw invalid('no command given');
  const u = ctx.user;
  const root = u.uid === 0;
  const caps = ps.capabilities;
  const proc: Record<string, unknown> = {
    terminal: p.tty,
    user: { uid: u.uid, gid: u.gid, ...(u.additionalGids.length ? { additionalGids: u.additionalGids } : {}) },
    args: p.args,
    env: buildEnv(p, hostname, u.home),
    cwd: checkCwd(p.cwd),
    capabilities: {
      bounding: caps,
      // Docker clears effective/permitted for non-root users: they only gain caps through file capabilities.
      effective: root ? caps : [],
      permitted: root ? caps : [],
    },
    rlimits: ps.rlimits,
    noNewPrivileges: ps.noNewPrivileges,
    // No oomScoreAdj unless asked for (buildSpec): lowering it needs CAP_SYS_RESOURCE, which root lacks on some hosts.
  };
  if (p.tty && p.consoleSize) proc.consoleSize = { height: p.consoleSize.rows, width: p.consoleSize.cols };
  return proc;
}

/** cpuWeight 1..10000 → cpu.shares 2..262144, linear. */
export function weightToShares(w: number): number {
  const c = Math.min(10000, Math.max(1, Math.round(w)));
  return Math.round(2 + ((c - 1) * (262144 - 2)) / 9999);
}

export const CPU_PERIOD = 100000;

export function buildResources(r: Resources): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.memoryBytes !== undefined && r.memoryBytes > 0) {
    // swap = limit: memory+swap may not exceed the memory limit, i.e. no swap.
    out.memory = { limit: r.memoryBytes, swap: r.memoryBytes };
  }
  const cpu: Record<string, number | string> = {};
  if (r.cpus !== undefined && r.cpus > 0) {
    cpu.quota = Math.max(1000, Math.round(r.cpus * CPU_PERIOD));
    cpu.period = CPU_PERIOD;
  }
  if (r.cpuWeight !== undefined && r.cpuWeight > 0) cpu.shares = weightToShares(r.cpuWeight);
  if (r.cpuShares !== undefined && r.cpuShares > 0) cpu.shares = r.cpuShares;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (r.swappiness !== undefined) out.memory = { ...(out.memory as object), swappiness: r.swappiness };
  if (r.memoryReservationBytes !== undefined) out.memory = { ...(out.memory as object), reservation: r.memoryReservationBytes };
  if (r.pidsLimit !== undefined && r.pidsLimit > 0) out.pids = { limit: r.pidsLimit };
  return out;
}

const dev = (type: 'c' | 'b', major: number | undefined, minor: number | undefined, access: string) => ({
  allow: true, type, ...(major === undefined ? {} : { major }), ...(minor === undefined ? {} : { minor }), access,
});

/** Device cgroup allowlist: deny all, then the standard character devices (and mknod of anything). */
export const DEVICE_RULES = [
  { allow: false, access: 'rwm' },
  dev('c', undefined, undefined, 'm'),
  dev('b', undefined, undefined, 'm'),
  dev('c', 1, 3, 'rwm'), // null
  dev('c', 1, 5, 'rwm'), // zero
  dev('c', 1, 7, 'rwm'), // full
  dev('c', 1, 8, 'rwm'), // random
  dev('c', 1, 9, 'rwm'), // urandom
  dev('c', 5, 0, 'rwm'), // tty
  dev('c', 5, 1, 'rwm'), // console
  dev('c', 5, 2, 'rwm'), // ptmx
  dev('c', 136, undefined, 'rwm'), // pts/*
  dev('c', 10, 200, 'rwm'), // net/tun
];

export function cgroupsPath(cgroupParent: string, id: string): string {
  return `/${cgroupParent.replace(/^\/+|\/+$/g, '')}/${id}`;
}

/** Docker's default tmpfs options come first so the caller's (exec, ro, size=) win: the kernel takes the last. */
const TMPFS_DEFAULTS = ['nosuid', 'nodev', 'noexec'];

/**
 * What dockerd (since 20.10) and containerd (2.0) set in a container's own network namespace: ports below 1024 and
 * ICMP echo sockets open to every user, so a non-root process can serve on :80 and ping. The container's own --sysctl
 * wins; a container in another's namespace (or the host's) gets none.
 */
const NETNS_SYSCTLS: Record<string, string> = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' };

/** `o.rootfs`: where the backend mounted the root. */
export function buildSpec(o: InitOptions & { rootfs: string }, ctx: SpecContext): Record<string, unknown> {
  if (!posix.isAbsolute(o.rootfs)) throw invalid(`rootfs must be absolute: ${o.rootfs}`);
  const sec = o.security ?? {};
  const priv = !!sec.Privileged;
  const sysOpts = ['nosuid', 'noexec', 'nodev', priv ? 'rw' : 'ro'];
  const mounts: Record<string, unknown>[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: sysOpts },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: [...sysOpts.slice(0, 3), 'relatime', sysOpts[3]] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${o.shmSizeBytes ?? 67108864}`] },
  ];
  for (const m of o.mounts) {
    if (!posix.isAbsolute(m.ContainerPath)) throw invalid(`mount destination must be absolute: ${m.ContainerPath}`);
    if (!posix.isAbsolute(m.HostPath)) throw invalid(`mount source must be absolute: ${m.HostPath}`);
    mounts.push({ destination: posix.normalize(m.ContainerPath), type: 'bind', source: m.HostPath, options: ['rbind', m.Propagation ?? 'rprivate', m.ReadOnly ? 'ro' : 'rw'] });
  }
  for (const t of o.tmpfs ?? []) {
    mounts.push({ destination: posix.normalize(t.ContainerPath), type: 'tmpfs', source: 'tmpfs', options: [...TMPFS_DEFAULTS, ...(t.Options ?? [])] });
  }
  // Writable as dockerd binds them, unless the whole root is read-only (they are the container's own copies).
  for (const f of o.etcFiles ?? []) {
    mounts.push({ destination: f.containerPath, type: 'bind', source: f.hostPath, options: ['bind', 'rprivate', sec.ReadOnlyRoot ? 'ro' : 'rw'] });
  }
  const joins = o.namespaces ?? {};
  const namespaces: Record<string, string>[] = [];
  for (const type of ['mount', 'pid', 'ipc', 'uts', 'cgroup', 'network'] as const) {
    const j = type === 'mount' || type === 'cgroup' ? undefined : joins[type];
    if (j && 'host' in j) continue; // no entry: the process stays in the host's namespace
    const path = j && 'path' in j ? j.path : type === 'network' ? o.netnsPath : undefined;
    namespaces.push(path ? { type, path } : { type });
  }
  const ownUts = !joins.uts;
  const sysctls = { ...(joins.network ? {} : NETNS_SYSCTLS), ...(o.sysctls ?? {}) };
  const devices = ctx.devices ?? [];
  const deviceRules = priv ? [{ allow: true, access: 'rwm' }] : [...DEVICE_RULES, ...devices.map((d) => dev(d.type, d.major, d.minor, d.access))];
  const seccomp = priv || sec.Seccomp?.Profile === 'unconfined' ? undefined : sec.Seccomp?.Profile === 'localhost' ? ctx.seccompProfile : defaultSeccompProfile();
  const proc = buildProcess(o.process, o.hostname, ctx, processSecurity(o, ctx));
  if (o.oomScoreAdj !== undefined) proc.oomScoreAdj = Math.max(o.oomScoreAdj, ctx.daemonOomScoreAdj ?? -1000);
  return {
    ociVersion: '1.0.2',
    process: proc,
    root: { path: o.rootfs, readonly: !!sec.ReadOnlyRoot },
    ...(ownUts ? { hostname: o.hostname } : {}),
    mounts,
    linux: {
      namespaces,
      cgroupsPath: cgroupsPath(ctx.cgroupParent, o.id),
      ...(devices.length ? { devices: devices.map(({ access: _a, ...d }) => d) } : {}),
      resources: { devices: deviceRules, ...buildResources(o.resources), ...(ctx.blockIO ? { blockIO: ctx.blockIO } : {}) },
      maskedPaths: priv ? [] : (sec.MaskedPaths ?? MASKED_PATHS),
      readonlyPaths: priv ? [] : (sec.ReadonlyPaths ?? READONLY_PATHS),
      ...(seccomp ? { seccomp } : {}),
      ...(Object.keys(sysctls).length ? { sysctl: sysctls } : {}),
      ...rootfsPropagation(o.mounts),
    },
  };
}

/** A shared (or slave) bind mount only propagates if the container's root does too. */
export function rootfsPropagation(mounts: InitOptions['mounts']): { rootfsPropagation?: string } {
  const p = mounts.map((m) => m.Propagation ?? 'rprivate');
  if (p.some((x) => x.endsWith('shared'))) return { rootfsPropagation: 'rshared' };
  if (p.some((x) => x.endsWith('slave'))) return { rootfsPropagation: 'rslave' };
  return {};
}
