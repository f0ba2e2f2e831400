// The seam between the compute service and its isolation backends, one per isolation mode (HCS's process and
// Hyper-V isolation): `process` (runc under conmon, ./process/) and `vm` (a QEMU microVM with a guest agent, ./vm/)
// implement this interface. The compute service holds them in a map keyed by the document's `Isolation`; nothing
// outside the compute service names a backend.

import type { Duplex, Readable } from 'node:stream';
import type { RootDescription } from '../storage/types.js';
import type { EndpointStatistics } from '../network/types.js';
import { SiloError } from '../common/errors.js';
import type { Finding } from '../common/leaks.js';
import type { Device, Logging, Security, Tmpfs, Ulimit } from './spec/schema.js';
import type { ComputeSystemDocument as Doc } from './types.js';

export type BlockIO = NonNullable<Doc['Container']['BlockIO']>;
import type { ComputeSystemDocument } from './types.js';

/** How a compute system is isolated (HCS's process isolation and Hyper-V isolation). */
export type Isolation = 'process' | 'vm';

export interface MappedDirectory {
  HostPath: string;
  ContainerPath: string;
  ReadOnly?: boolean;
  /** Relative to HostPath, resolved inside it when the mount is made (volume-subpath). */
  Subpath?: string;
  Propagation?: 'private' | 'rprivate' | 'slave' | 'rslave' | 'shared' | 'rshared';
  /** Filled from the image at create when empty (docker's volume copy-up; see the spec's schema). */
  PopulateFromImage?: boolean;
}

export interface Resources {
  memoryBytes?: number;
  /** CPU quota in cores (0.5 = half a core); maps to CFS quota/period. */
  cpus?: number;
  /** Relative weight 1..10000 (HCS Processor.Weight); maps to cpu shares. */
  cpuWeight?: number;
  /** cpu.shares as given (the CRI's); the weight's mapping is not used then. */
  cpuShares?: number;
  pidsLimit?: number;
  /** cpuset.cpus, e.g. "0-1,3". */
  cpusetCpus?: string;
  /** memory.soft_limit_in_bytes: what the kernel reclaims the job down to when the host runs short (docker's
   *  --memory-reservation). */
  memoryReservationBytes?: number;
  /** memory.swappiness 0..100. */
  swappiness?: number;
}

/** Join an existing namespace (a path such as /proc/<pid>/ns/pid or a pod's netns) or the host's. */
export type NamespaceJoin = { host: true } | { path: string };

export interface ProcessParams {
  args: string[];
  env: string[];
  cwd: string;
  /** "name", "uid", "uid:gid", "name:group"; resolved against the container's /etc/passwd and /etc/group. */
  user: string;
  tty: boolean;
  stdin: boolean;
  /** false: stdin stays open when an attached client goes (StdinOnce off); absent or true: the client's end closes it. */
  stdinOnce?: boolean;
  consoleSize?: { rows: number; cols: number };
}

export interface InitOptions {
  id: string;
  name: string;
  /** The root as storage describes it; the backend mounts it (mountRoot) where the container runs. */
  root: RootDescription;
  hostname: string;
  process: ProcessParams;
  mounts: MappedDirectory[];
  resources: Resources;
  /** Path of the network namespace to join; undefined = a new, empty one. */
  netnsPath?: string;
  /** Extra files to bind read-only into the container, e.g. /etc/resolv.conf, /etc/hosts. */
  etcFiles?: { hostPath: string; containerPath: string }[];
  stopSignal?: string;
  /** Namespaces not made new: the host's or another's (the network one as netnsPath when it is a path). */
  namespaces?: Partial<Record<'pid' | 'ipc' | 'uts' | 'network', NamespaceJoin>>;
  security?: Security;
  /** Default: the file driver in the backend's own state. */
  log?: Logging;
  tmpfs?: Tmpfs[];
  devices?: Device[];
  /** Block I/O throttling by host device node (process isolation). */
  blockIO?: BlockIO;
  ulimits?: Ulimit[];
  shmSizeBytes?: number;
  /** The endpoints in `netnsPath` as a guest needs them (vm): interface name, MAC, address/prefix, gateway. */
  interfaces?: GuestInterface[];
  sysctls?: Record<string, string>;
  oomScoreAdj?: number;
  /** A cgroup (cgroupfs path, e.g. the kubelet's /kubepods/burstable/pod<uid>) to put this system's under instead of the
   *  daemon's. */
  cgroupParent?: string;
  /** vm: the system runs in another system's utility VM (a container of a VM-isolated pod; HCS's HostingSystemId), whose
   *  network, IPC and UTS namespaces it shares, and its PID namespace too when `sharePid`. */
  hostingSystem?: { id: string; sharePid: boolean };
  /** vm: a tiny init from the guest agent as PID 1 (docker's --init), which reaps orphans and passes signals on. */
  guestInit?: boolean;
  /** vm: the Debian kernel package its utility VM boots instead of the default guest kernel. */
  kernelPackage?: string;
  /** vm: systems it hosts may have bind mounts: its VM gets a virtiofs share and shared guest RAM (a pod's VM). */
  hostedMounts?: boolean;
}

export interface GuestInterface {
  ifname: string;
  mac: string;
  /** "10.88.0.5/16" */
  address: string;
  gateway?: string;
  mtu?: number;
}

export interface ExitStatus {
  exitCode: number;
  /** ISO time the monitor recorded. */
  finishedAt: string;
  /** True when it died of the memory cgroup's OOM killer. */
  oomKilled?: boolean;
  /** Why the runtime, not the process, ended it (its monitor died and it was killed): docker's State.Error. */
  error?: string;
}

export interface RuntimeState {
  status: 'created' | 'running' | 'paused' | 'stopped' | 'unknown';
  pid?: number;
}

export interface Statistics {
  timestamp: string;
  cpu: { totalNs: number; userNs: number; kernelNs: number; throttledPeriods: number; throttledNs: number };
  memory: { usageBytes: number; peakBytes: number; limitBytes: number; failCount: number };
  pids: { current: number; limit: number };
  io: { readBytes: number; writeBytes: number };
  /** Per interface name (eth0…): its endpoint's counters. The compute service adds them (not the backend): the
   *  network service owns the endpoints. */
  network?: Record<string, EndpointStatistics>;
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  user: string;
  command: string;
  cpuNs: number;
  rssBytes: number;
  startedAt?: string;
}

export interface ExecOptions {
  execId: string;
  process: ProcessParams;
}

/** A live attachment to a process' stdio through its monitor. */
export interface Attachment {
  /** Output: each chunk tagged with its stream (1 = stdout, 2 = stderr); with a tty everything is stdout. */
  onOutput(cb: (stream: 1 | 2, data: Buffer) => void): void;
  onClose(cb: () => void): void;
  writeStdin(data: Buffer): void;
  closeStdin(): void;
  detach(): void;
}

export interface LogEntry {
  time: string; // RFC3339Nano
  stream: 'stdout' | 'stderr';
  /** Line including its trailing newline when it had one. */
  data: Buffer;
}

/** docker's container path stat (`X-Docker-Container-Path-Stat`). */
export interface PathStat {
  name: string;
  size: number;
  /** Go os.FileMode bits, which is what docker's CLI decodes. */
  mode: number;
  mtime: string;
  /** The path a symbolic link leads to inside the container, fully resolved; '' for anything else. */
  linkTarget: string;
}

/** What a copy needs to know of a system: its mapped directories as the container sees them. */
export interface CopyTarget {
  id: string;
  /** For messages: the name a client knows the system by. */
  name: string;
  mounts: MappedDirectory[];
  /** The container's own root only: no mapped directories, nothing the runtime mounted in it (docker export). */
  rootOnly?: boolean;
}

export interface CopyInOptions {
  /** Refuse to replace a directory with a non-directory or the reverse (docker cp's default). */
  noOverwriteDirNonDir?: boolean;
  /** Owner for every entry; undefined keeps the archive's. */
  owner?: { uid: number; gid: number };
}

export interface IsolationBackend {
  /** Refuse at create, with one line, what of a document this backend cannot run yet (never dropped silently). */
  checkDocument?(doc: ComputeSystemDocument): void;
  /** What a create needs made before its record exists (vm: the guest kernel the document names, fetched and built
   *  once); refuses in one line, leaving nothing behind. */
  prepareDocument?(doc: ComputeSystemDocument): Promise<void>;
  /** Make the root storage described where the container runs (process: the overlay on the host). Idempotent; on
   *  failure nothing of it is left. */
  mountRoot(id: string, root: RootDescription): Promise<void>;
  /** Take the root down; the scratch image keeps its changes. Idempotent. */
  unmountRoot(id: string): Promise<void>;
  /** Whether the root may be unmounted while delete runs: nothing of the system is left running and its runtime's
   *  delete does not touch the root. Without it, a removal deletes first, then unmounts. */
  rootFreeOfRuntime?(id: string): Promise<boolean>;
  /** The host directory holding the scratch's changes (overlay upper dir) while the root is mounted, for a commit;
   *  undefined when it is not mounted (storage reads the scratch image itself then). */
  scratchChanges(id: string): Promise<string | undefined>;
  // Copies into and out of a system's root (docker cp, a build's COPY). The compute service calls them with the root
  // mounted and its per-system root lock held; paths are resolved inside the container, never onto the host.
  /** Stat `path` (its last component not followed); also the container path it resolved to. */
  statPath(t: CopyTarget, path: string): Promise<{ stat: PathStat; path: string }>;
  /** A tar of `path` named by its base name, handed to `sink`; the root stays usable until `sink` resolves. */
  copyOut(t: CopyTarget, path: string, sink: (stat: PathStat, tar: Readable) => Promise<void>): Promise<void>;
  /** Extract a tar under the directory `dir` (followed); entries may not climb out of it. */
  copyIn(t: CopyTarget, dir: string, tar: AsyncIterable<Uint8Array>, o: CopyInOptions): Promise<void>;
  /** `mkdir -p` inside the container; returns the resolved container path. */
  makeDirectory(t: CopyTarget, path: string, owner?: { uid: number; gid: number }): Promise<string>;
  /** A small regular file of the container (e.g. /etc/passwd), or undefined when absent, not a file or too large. */
  readFile(t: CopyTarget, path: string, maxBytes: number): Promise<string | undefined>;

  /** Create the container (bundle, monitor, runtime create). The init process is ready but not yet running. */
  create(opts: InitOptions): Promise<{ pid: number }>;
  /** Attach to the init process stdio (before start, to miss nothing). */
  attach(id: string): Promise<Attachment>;
  start(id: string): Promise<void>;
  kill(id: string, signal: string, all?: boolean): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** Resource changes of a running container (memory and processor). */
  update(id: string, r: Resources): Promise<void>;
  state(id: string): Promise<RuntimeState>;
  /** The exit status the monitor recorded, or undefined while it runs. */
  exitStatus(id: string): Promise<ExitStatus | undefined>;
  /** Resolve when the init process has exited (monitor's exit file). Works for containers adopted after a restart. */
  waitExit(id: string): Promise<ExitStatus>;
  statistics(id: string): Promise<Statistics>;
  processList(id: string): Promise<ProcessInfo[]>;
  resize(id: string, execId: string | undefined, rows: number, cols: number): Promise<void>;
  /** Close and open the init process' log file again (it was rotated: the CRI's ReopenContainerLog). */
  reopenLog(id: string): Promise<void>;
  /** Start another process in the running container; attach before it runs. Resolves with the live attachment and its exit. */
  exec(id: string, opts: ExecOptions): Promise<{ pid: number; attachment: Attachment; exit: Promise<ExitStatus> }>;
  /** Logs of the init process: past entries, then (follow) new ones until the container stops. */
  readLogs(id: string, opts: { follow: boolean; tail?: number; since?: string }, onEntry: (e: LogEntry) => unknown, signal: AbortSignal): Promise<void>;
  /** Remove runtime state, monitor, bundle and cgroup. The process must be stopped (or force: killed first). Idempotent. */
  /** keepLogs: keep the log (a stopped system that starts again appends to it; docker keeps logs until rm). */
  delete(id: string, opts?: { force?: boolean; keepLogs?: boolean }): Promise<void>;
  /** Kernel objects and processes with this backend's names that belong to none of `known` (the compute service's
   *  systems of this isolation mode); for `silo doctor`. */
  leaks(known: ReadonlySet<string>): Promise<Finding[]>;
  /** Remove what leaks() found, and only that. */
  fixLeaks(found: Finding[]): Promise<void>;
  /** Ids the backend still has runtime state for; for recovery. */
  list(): Promise<string[]>;
}

/** The backends a daemon has, one per isolation mode; the first is the default. */
export type Backends = ReadonlyMap<Isolation, IsolationBackend>;

/** A system's backend by the isolation its document records (`process` for records older than the field). */
export function backendFor(backends: Backends, isolation: Isolation | undefined, name: string): IsolationBackend {
  const iso = isolation ?? 'process';
  const b = backends.get(iso);
  if (!b) throw new SiloError('FailedPrecondition', 'SILO_ISOLATION_UNAVAILABLE', `container ${name} uses isolation "${iso}", which this host does not offer now`);
  return b;
}

export type { Duplex };
