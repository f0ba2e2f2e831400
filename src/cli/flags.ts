// Pure parsing of docker-style flags and building the create document. No I/O: callers pass file texts and env.

import type {
  CreateLoadBalancerBody as CreateLoadBalancerRequest, CreateNetworkBody as CreateNetworkRequest, CreateSystemBody as CreateSystemRequest, ExecBody,
  MappedDirectory, Networking, NetworkType, Protocol,
} from '../api/native/wire.js';

type ProcessParameters = ExecBody & { CommandArgs: string[] };
import { CliError } from './errors.js';
import { dockerLogging, parseLogOpts } from '../common/logopts.js';
import { isIPv6 } from 'node:net';

const MULT: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Docker's RAMInBytes: "64m", "1g", "512k", "1.5G", "100", "64MiB", "64mb" → bytes (binary multiples). */
export function parseSize(s: string, flag = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s?([kmgtp])?(i?b)?\s*$/i.exec(s);
  if (!m) throw new CliError(`invalid ${flag}: '${s}' (expected a number with an optional unit b, k, m, g: e.g. 64m)`);
  const unit = (m[2] ?? (m[3] ? 'b' : '')).toLowerCase();
  return Math.floor(Number(m[1]) * MULT[unit]);
}

export function parseCpus(s: string): number {
  const n = Number(s);
  if (!/^\s*\d*\.?\d+\s*$/.test(s) || !Number.isFinite(n) || n < 0) throw new CliError(`invalid argument "${s}" for "--cpus": must be a non-negative decimal`);
  return n;
}

export function parseInteger(s: string, flag: string, min = -Infinity): number {
  if (!/^-?\d+$/.test(s.trim())) throw new CliError(`invalid argument "${s}" for "${flag}": must be an integer`);
  const n = Number(s);
  if (n < min) throw new CliError(`invalid argument "${s}" for "${flag}": must be at least ${min}`);
  return n;
}

function checkKey(key: string, what: string): void {
  if (!key) throw new CliError(`invalid ${what}: empty name`);
  if (/\s/.test(key)) throw new CliError(`invalid ${what}: variable '${key}' contains whitespaces`);
}

/** `-e KEY=V` sets, `-e KEY` copies KEY from `env` (left out when unset there), like docker. */
export function parseEnvList(list: string[], env: Record<string, string | undefined>, into: Record<string, string> = {}): Record<string, string> {
  for (const e of list) {
    const i = e.indexOf('=');
    const key = i < 0 ? e : e.slice(0, i);
    checkKey(key, 'environment variable');
    if (i >= 0) into[key] = e.slice(i + 1);
    else if (env[key] !== undefined) into[key] = env[key]!;
  }
  return into;
}

/** An --env-file's text: KEY=V lines, KEY alone from `env`; blank lines and `#` comments skipped; no quote processing. */
export function parseEnvFile(text: string, env: Record<string, string | undefined>, into: Record<string, string> = {}): Record<string, string> {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l && !l.startsWith('#'));
  return parseEnvList(lines, env, into);
}

/**
 * `-v /host:/ctr[:ro|rw]`, a bind of a host directory, or `-v name:/ctr[:ro|rw|nocopy]`, a named volume: `volumes`
 * maps each name to its data directory, asked of the daemon first (volumeNames), which makes a missing one. A new
 * volume is filled from the image at create unless nocopy (docker's copy-up).
 */
export function parseVolume(spec: string, volumes: Record<string, string> = {}): MappedDirectory {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1])
    throw new CliError(`invalid volume specification: '${spec}' (expected /host/path:/container/path[:ro] or name:/container/path[:ro])`);
  const [host, ctr, mode] = parts;
  const named = !host.startsWith('/');
  if (named && !VOLUME_NAME.test(host)) throw new CliError(`invalid volume specification: '${spec}': a host path must be absolute, a volume name [a-zA-Z0-9][a-zA-Z0-9_.-]+`);
  if (!ctr.startsWith('/')) throw new CliError(`invalid volume specification: '${spec}': the container path must be absolute`);
  let ro = false;
  let nocopy = false;
  for (const o of mode ? mode.split(',') : []) {
    if (o === 'ro') ro = true;
    else if (o === 'rw') ro = false;
    else if (o === 'nocopy' && named) nocopy = true;
    else throw new CliError(`invalid volume specification: '${spec}': unknown mode '${o}' (ro or rw${named ? ', nocopy' : ''})`);
  }
  const path = named ? volumes[host] : host;
  if (!path) throw new CliError(`volume ${host}: its path was not asked of the daemon`);
  const d: MappedDirectory = { HostPath: path, ContainerPath: ctr };
  if (ro) d.ReadOnly = true;
  if (named && !nocopy) d.PopulateFromImage = true;
  return d;
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The volume names `-v` specifications use, each once. */
export function volumeNames(specs: string[]): string[] {
  return [...new Set(specs.map((s) => s.split(':')[0]).filter((h) => h && !h.startsWith('/')))];
}

/** `-l k=v` / `-l k` (empty value). */
export function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    const key = i < 0 ? l : l.slice(0, i);
    if (!key) throw new CliError(`invalid label: '${l}'`);
    out[key] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

/** Docker's signal spellings → "SIGTERM"; numbers stay numbers ("9"). */
export function normalizeSignal(s: string): string {
  const t = s.trim().toUpperCase();
  if (/^\d+$/.test(t)) return t;
  if (!/^[A-Z0-9+-]+$/.test(t)) throw new CliError(`invalid signal: ${s}`);
  return t.startsWith('SIG') ? t : `SIG${t}`;
}

/** The options `run` and `create` share (commander's camel-cased names). */
export interface CreateFlags {
  name?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  volume?: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  storageSize?: string;
  storageOpt?: string[];
  isolation?: string;
  vmKernel?: string;
  entrypoint?: string;
  label?: string[];
  stopSignal?: string;
  stopTimeout?: string;
  tty?: boolean;
  interactive?: boolean;
  rm?: boolean;
  restart?: string;
  init?: boolean;
  network?: string;
  /** Docker's older spelling of --network. */
  net?: string;
  publish?: string[];
  ip?: string;
  networkAlias?: string[];
  macAddress?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
  pid?: string;
  ipc?: string;
  uts?: string;
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  groupAdd?: string[];
  tmpfs?: string[];
  device?: string[];
  deviceReadBps?: string[];
  deviceWriteBps?: string[];
  deviceReadIops?: string[];
  deviceWriteIops?: string[];
  ulimit?: string[];
  shmSize?: string;
  cpusetCpus?: string;
  memorySwappiness?: string;
  memoryReservation?: string;
  domainname?: string;
  sysctl?: string[];
  oomScoreAdj?: string;
  logDriver?: string;
  logOpt?: string[];
}

export interface BuildContext {
  env: Record<string, string | undefined>;
  /** Texts of the --env-file files, in order. */
  envFiles?: string[];
  /** [rows, cols] of the local terminal, for -t. */
  consoleSize?: [number, number];
  /** Named volumes' data directories by name (volumeNames, asked of the daemon). */
  volumes?: Record<string, string>;
}

/** Flags → the body of `POST /v1/systems`. Throws CliError on bad input. */
export function buildCreateRequest(image: string, command: string[], f: CreateFlags, ctx: BuildContext): CreateSystemRequest {
  type Doc = NonNullable<CreateSystemRequest['Document']>;
  const container: NonNullable<Doc['Container']> = {};
  const proc: Doc['Process'] & Partial<ProcessParameters> = {};
  const doc: Doc = {};

  if (f.hostname !== undefined) container.GuestOs = { HostName: f.hostname };
  let scratch = f.storageSize !== undefined ? parseSize(f.storageSize, 'storage size') : undefined;
  for (const o of f.storageOpt ?? []) {
    const m = /^size=(.*)$/i.exec(o);
    if (!m) throw new CliError(`invalid storage option: '${o}' (only size=<size> is supported)`);
    scratch = parseSize(m[1], 'storage size');
  }
  // The create schema's Storage carries only the size (the image is the request's Image).
  if (scratch !== undefined) container.Storage = { ScratchSizeInBytes: scratch };
  const vols = (f.volume ?? []).map((v) => parseVolume(v, ctx.volumes));
  if (vols.length) container.MappedDirectories = vols;
  if (f.memory !== undefined) {
    const bytes = parseSize(f.memory, 'memory');
    if (bytes > 0) container.Memory = { SizeInMB: bytes / 1024 ** 2 }; // fractional MB is exact (the daemon wants >= 6)
  }
  if (f.cpus !== undefined) {
    const n = parseCpus(f.cpus);
    if (n > 0) container.Processor = { Count: n };
  }
  if (f.pidsLimit !== undefined) {
    const n = parseInteger(f.pidsLimit, '--pids-limit');
    if (n > 0) container.Pids = { Limit: n }; // 0 and -1 mean unlimited, as in docker
  }
  const shared = sharedNamespaces(f);
  if (shared) container.Namespaces = shared;
  const networking = buildNetworking(shared?.Network ? { ...f, network: undefined, net: undefined } : f);
  if (networking) container.Networking = networking;
  const security = buildSecurity(f);
  if (security) container.Security = security;
  const tmpfs = (f.tmpfs ?? []).map(parseTmpfs);
  if (tmpfs.length) container.Tmpfs = tmpfs;
  const devices = (f.device ?? []).map(parseDevice);
  if (devices.length) container.Devices = devices;
  const rates = (l: string[] | undefined, flag: string, iops: boolean) => (l?.length ? l.map((s) => parseDeviceRate(s, flag, iops)) : undefined);
  const blockIO = Object.fromEntries(
    Object.entries({
      ReadBps: rates(f.deviceReadBps, '--device-read-bps', false),
      WriteBps: rates(f.deviceWriteBps, '--device-write-bps', false),
      ReadIops: rates(f.deviceReadIops, '--device-read-iops', true),
      WriteIops: rates(f.deviceWriteIops, '--device-write-iops', true),
    }).filter(([, v]) => v),
  );
  if (Object.keys(blockIO).length) container.BlockIO = blockIO;
  const ulimits = (f.ulimit ?? []).map(parseUlimit);
  if (ulimits.length) container.Ulimits = ulimits;
  if (f.shmSize !== undefined) container.ShmSizeInBytes = parseSize(f.shmSize, '--shm-size');
  if (f.cpusetCpus !== undefined) container.Processor = { ...container.Processor, CpusetCpus: f.cpusetCpus };
  if (f.memorySwappiness !== undefined) container.Memory = { ...container.Memory, Swappiness: parseInteger(f.memorySwappiness, '--memory-swappiness', 0) };
  if (f.memoryReservation !== undefined) container.Memory = { ...container.Memory, ReservationInBytes: parseSize(f.memoryReservation, '--memory-reservation') };
  for (const kv of f.sysctl ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`invalid --sysctl '${kv}': expected key=value`);
    container.Sysctls = { ...container.Sysctls, [kv.slice(0, i)]: kv.slice(i + 1) };
  }
  // The UTS namespace's domain name is its sysctl, as the Docker door sets it.
  if (f.domainname !== undefined) container.Sysctls = { ...container.Sysctls, 'kernel.domainname': f.domainname };
  if (f.oomScoreAdj !== undefined) container.OomScoreAdj = parseInteger(f.oomScoreAdj, '--oom-score-adj', -1000);
  if (f.logDriver !== undefined || f.logOpt?.length) {
    // file is Silo's own name for the one kind of log it keeps; json-file and local are docker's for it.
    const driver = f.logDriver === 'file' ? 'json-file' : f.logDriver;
    if (driver !== undefined && !['json-file', 'local', 'none'].includes(driver)) throw new CliError(`invalid --log-driver '${f.logDriver}': file (json-file, local) or none`);
    try {
      const logging = { ...(driver ? { Driver: 'file' as const } : {}), ...dockerLogging(driver, parseLogOpts(f.logOpt ?? [])) };
      if (Object.keys(logging).length) container.Logging = logging;
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }

  if (command.length) proc.CommandArgs = command;
  if (f.entrypoint !== undefined) proc.Entrypoint = f.entrypoint === '' ? [] : [f.entrypoint];
  const environment: Record<string, string> = {};
  for (const text of ctx.envFiles ?? []) parseEnvFile(text, ctx.env, environment);
  parseEnvList(f.env ?? [], ctx.env, environment);
  if (Object.keys(environment).length) proc.Environment = environment;
  if (f.workdir !== undefined) {
    if (!f.workdir.startsWith('/')) throw new CliError(`the working directory '${f.workdir}' is invalid, it needs to be an absolute path`);
    proc.WorkingDirectory = f.workdir;
  }
  if (f.user !== undefined) proc.User = f.user;
  if (f.tty) {
    proc.EmulateConsole = true;
    if (ctx.consoleSize) proc.ConsoleSize = ctx.consoleSize;
  }
  if (f.interactive) proc.CreateStdInPipe = true;

  if (Object.keys(container).length) doc.Container = container;
  if (Object.keys(proc).length) doc.Process = proc as Doc['Process'];
  if (f.rm) doc.AutoRemove = true;
  if (f.isolation !== undefined && f.isolation !== 'default') {
    if (f.isolation !== 'process' && f.isolation !== 'vm' && f.isolation !== 'hyperv') throw new CliError(`invalid isolation: '${f.isolation}' (process or vm)`);
    doc.Isolation = f.isolation === 'process' ? 'process' : 'vm';
  }
  // Judged by the daemon (a vm isolation's option; the package fetched there), as the Docker label is.
  if (f.vmKernel !== undefined) doc.VirtualMachine = { KernelPackage: f.vmKernel };
  if (f.restart !== undefined) doc.RestartPolicy = parseRestart(f.restart);
  if (f.init) doc.Init = true;
  if (f.stopSignal !== undefined) doc.StopSignal = normalizeSignal(f.stopSignal);
  if (f.stopTimeout !== undefined) doc.StopTimeoutSeconds = parseInteger(f.stopTimeout, '--stop-timeout');
  const labels = parseLabels(f.label ?? []);
  if (Object.keys(labels).length) doc.Labels = labels;

  const req: CreateSystemRequest = { Image: image };
  if (f.name !== undefined) req.Name = f.name;
  if (Object.keys(doc).length) req.Document = doc;
  return req;
}

type Container = NonNullable<NonNullable<CreateSystemRequest['Document']>['Container']>;
type NamespaceRef = NonNullable<NonNullable<Container['Namespaces']>['Pid']>;

/** `host` or `container:<name|id>` of --network/--pid/--ipc/--uts. */
function namespaceFlag(flag: string, v: string | undefined, container = true): NamespaceRef | undefined {
  if (v === undefined) return undefined;
  if (v === 'host') return { Mode: 'host' };
  if (container && v.startsWith('container:') && v.length > 10) return { Mode: 'system', Target: v.slice(10) };
  throw new CliError(`invalid --${flag} '${v}': host${container ? ' or container:<name|id>' : ''}`);
}

/** --network host|container:x, --pid, --ipc, --uts → the namespaces the container shares (undefined: none). */
export function sharedNamespaces(f: CreateFlags): Container['Namespaces'] {
  const net = f.network ?? f.net;
  const n: NonNullable<Container['Namespaces']> = {};
  if (net === 'host' || net?.startsWith('container:')) n.Network = namespaceFlag('network', net);
  const pid = namespaceFlag('pid', f.pid);
  if (pid) n.Pid = pid;
  if (f.ipc !== undefined && f.ipc !== 'private' && f.ipc !== 'shareable') n.Ipc = namespaceFlag('ipc', f.ipc);
  const uts = namespaceFlag('uts', f.uts, false);
  if (uts) n.Uts = uts;
  if (n.Network && (f.publish?.length || f.ip !== undefined || f.networkAlias?.length || f.macAddress || f.dns?.length || f.dnsSearch?.length || f.dnsOption?.length || f.addHost?.length))
    throw new CliError(`conflicting options: --network ${net} shares a network namespace, so it takes no -p, --ip, --network-alias, --mac-address, --dns* or --add-host`);
  return Object.keys(n).length ? n : undefined;
}

/** --privileged, --read-only, --cap-add/--cap-drop, --security-opt, --group-add → the security context. */
export function buildSecurity(f: CreateFlags): Container['Security'] {
  const s: NonNullable<Container['Security']> = {};
  if (f.privileged) s.Privileged = true;
  if (f.readOnly) s.ReadOnlyRoot = true;
  if (f.capAdd?.length) s.CapAdd = f.capAdd;
  if (f.capDrop?.length) s.CapDrop = f.capDrop;
  if (f.groupAdd?.length) s.SupplementalGroups = f.groupAdd.map((g) => (/^\d+$/.test(g) ? Number(g) : g));
  for (const o of f.securityOpt ?? []) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(o);
    if (m?.[1] === 'no-new-privileges' && ['', undefined, 'true', 'false'].includes(m[2])) s.NoNewPrivileges = m[2] !== 'false';
    else if (m?.[1] === 'seccomp' && m[2] === 'unconfined') s.Seccomp = { Profile: 'unconfined' };
    else if (m?.[1] === 'seccomp' && m[2]?.startsWith('/')) s.Seccomp = { Profile: 'localhost', LocalhostPath: m[2] };
    else throw new CliError(`invalid --security-opt '${o}': no-new-privileges[:true|false], seccomp=unconfined or seccomp=/absolute/profile.json`);
  }
  return Object.keys(s).length ? s : undefined;
}

/** `--tmpfs /run[:size=64m,mode=1777,...]`; sizes in docker's units become bytes. */
export function parseTmpfs(spec: string): NonNullable<Container['Tmpfs']>[number] {
  const i = spec.indexOf(':');
  const path = i < 0 ? spec : spec.slice(0, i);
  if (!path.startsWith('/') || path === '/') throw new CliError(`invalid --tmpfs '${spec}': the path must be absolute and not /`);
  const opts = i < 0 ? [] : spec.slice(i + 1).split(',').filter(Boolean).map((o) => (o.startsWith('size=') ? `size=${parseSize(o.slice(5), '--tmpfs size')}` : o));
  return { ContainerPath: path, ...(opts.length ? { Options: opts } : {}) };
}

/** `--device /dev/x[:/dev/y[:rwm]]`. */
export function parseDevice(spec: string): NonNullable<Container['Devices']>[number] {
  const [host, ctr, perms] = spec.split(':');
  if (!host?.startsWith('/')) throw new CliError(`invalid --device '${spec}': the host path must be absolute`);
  if (ctr !== undefined && /^[rwm]{1,3}$/.test(ctr) && perms === undefined) return { PathOnHost: host, Permissions: ctr };
  if (ctr !== undefined && !ctr.startsWith('/')) throw new CliError(`invalid --device '${spec}': the container path must be absolute`);
  if (perms !== undefined && !/^[rwm]{1,3}$/.test(perms)) throw new CliError(`invalid --device '${spec}': permissions are r, w and m`);
  return { PathOnHost: host, ...(ctr ? { PathInContainer: ctr } : {}), ...(perms ? { Permissions: perms } : {}) };
}

/** `--device-read-bps /dev/sda:1mb` (a size) or `--device-read-iops /dev/sda:100` (a count), as docker's. */
export function parseDeviceRate(spec: string, flag: string, iops: boolean): { Path: string; Rate: number } {
  const i = spec.lastIndexOf(':');
  const path = i < 0 ? '' : spec.slice(0, i);
  if (!path.startsWith('/')) throw new CliError(`invalid ${flag} '${spec}': expected /dev/<device>:<rate>`);
  const rate = iops ? parseInteger(spec.slice(i + 1), flag, 0) : parseSize(spec.slice(i + 1), flag);
  return { Path: path, Rate: rate };
}

/** `--ulimit nproc=100[:200]` (one number: soft = hard). */
export function parseUlimit(spec: string): NonNullable<Container['Ulimits']>[number] {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(spec);
  if (!m) throw new CliError(`invalid --ulimit '${spec}': expected name=soft[:hard], e.g. nproc=100:200`);
  return { Name: m[1], Soft: Number(m[2]), Hard: Number(m[3] ?? m[2]) };
}

/** `--add-host name:ip`. */
export function parseAddHost(spec: string): { Name: string; IpAddress: string } {
  const i = spec.indexOf(':');
  if (i <= 0 || i === spec.length - 1) throw new CliError(`invalid --add-host '${spec}': expected name:ip`);
  return { Name: spec.slice(0, i), IpAddress: spec.slice(i + 1) };
}

/** Options of `exec` → ProcessParameters. */
export function buildExecProcess(
  command: string[],
  f: { env?: string[]; envFile?: string[]; workdir?: string; user?: string; tty?: boolean; interactive?: boolean },
  ctx: BuildContext,
): ProcessParameters {
  const p: ProcessParameters = { CommandArgs: command };
  const environment: Record<string, string> = {};
  for (const text of ctx.envFiles ?? []) parseEnvFile(text, ctx.env, environment);
  parseEnvList(f.env ?? [], ctx.env, environment);
  if (Object.keys(environment).length) p.Environment = environment;
  if (f.workdir !== undefined) p.WorkingDirectory = f.workdir;
  if (f.user !== undefined) p.User = f.user;
  if (f.tty) {
    p.EmulateConsole = true;
    if (ctx.consoleSize) p.ConsoleSize = ctx.consoleSize;
  }
  if (f.interactive) p.CreateStdInPipe = true;
  return p;
}

// ---- networking -------------------------------------------------------------------------------------------------

type PortMapping = NonNullable<Networking['PortMappings']>[number];

const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

export function isIPv4(s: string): boolean {
  const m = IPV4.exec(s);
  return !!m && m.slice(1).every((o) => Number(o) <= 255);
}

/** An IPv4 address for `what`; IPv6 gets its own message (where only IPv4 goes). */
export function parseIPv4(s: string, what: string): string {
  const t = s.trim();
  if (isIPv4(t)) return t;
  if (t.includes(':')) throw new CliError(`invalid ${what} '${s}': IPv6 addresses are not supported here`);
  throw new CliError(`invalid ${what} '${s}': not an IPv4 address`);
}

/** "10.1.0.0/24" (checked: an IPv4 address and a prefix length 0-32). */
export function parseCidr(s: string, what = 'subnet', v6 = false): string {
  const t = s.trim();
  const i = t.indexOf('/');
  if (v6 && i > 0 && isIPv6(t.slice(0, i))) {
    if (!/^\d{1,3}$/.test(t.slice(i + 1)) || Number(t.slice(i + 1)) > 128) throw new CliError(`invalid ${what} '${s}': the prefix length must be 0-128`);
    return t;
  }
  if (i < 0) {
    if (t.includes(':')) throw new CliError(`invalid ${what} '${s}': IPv6 addresses are not supported here`);
    throw new CliError(`invalid ${what} '${s}': expected a CIDR such as 10.1.0.0/24`);
  }
  parseIPv4(t.slice(0, i), what);
  const len = t.slice(i + 1);
  if (!/^\d{1,2}$/.test(len) || Number(len) > 32) throw new CliError(`invalid ${what} '${s}': the prefix length must be 0-32`);
  return t;
}

/** A CIDR or a single address (outbound NAT exceptions accept both). */
const parseCidrOrIp = (s: string, what: string): string => (s.includes('/') ? parseCidr(s, what) : parseIPv4(s, what));

export function parsePort(s: string, spec: string, what = 'port'): number {
  if (/^\d+-\d+$/.test(s)) throw new CliError(`invalid ${what} '${s}' in '${spec}': port ranges are not supported`);
  const n = Number(s);
  if (!/^\d{1,5}$/.test(s) || n < 1 || n > 65535) throw new CliError(`invalid ${what} '${s}' in '${spec}': must be a number 1-65535`);
  return n;
}

export function parseProtocol(s: string, spec: string): Protocol {
  const p = s.toLowerCase();
  if (p !== 'tcp' && p !== 'udp') throw new CliError(`invalid protocol '${s}' in '${spec}': tcp or udp`);
  return p;
}

/** A trailing `/tcp` or `/udp` of a port spec, and the rest; tcp when there is none. */
function splitProtocol(spec: string): { rest: string; Protocol: Protocol } {
  const rest = spec.trim();
  const slash = rest.lastIndexOf('/');
  return slash < 0 ? { rest, Protocol: 'tcp' } : { rest: rest.slice(0, slash), Protocol: parseProtocol(rest.slice(slash + 1), spec) };
}

/**
 * `-p [hostip:]hostPort:containerPort[/tcp|udp]` → a PortMapping. Silo allocates no random host port, so the host port
 * is required; a host IP of 0.0.0.0 (or none) means every local address.
 */
export function parsePublish(spec: string): PortMapping {
  const { rest: given, Protocol } = splitProtocol(spec);
  // An IPv6 host address goes in brackets, as docker's (`[::]:8080:80`): for a dual-stack network.
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(.*)$/.exec(given);
  if (v6 && !isIPv6(v6[1])) throw new CliError(`invalid host IP in '${spec}': not an IPv6 address`);
  const rest = v6 ? `v6:${v6[2]}` : given;
  if (rest.split(':').length > 3) throw new CliError(`invalid publish '${spec}': an IPv6 host address goes in brackets ([::]:8080:80)`);
  const parts = rest.split(':');
  const [ip, host, ctr] = parts.length === 3 ? parts : parts.length === 2 ? ['', ...parts] : ['', '', parts[0]];
  if (!ctr) throw new CliError(`invalid publish '${spec}': no container port (expected [hostip:]hostPort:containerPort[/tcp|udp])`);
  const InternalPort = parsePort(ctr, spec, 'container port');
  // No host port (`-p 80`, `-p 127.0.0.1::80`): 0, a free one the network service picks, as docker's.
  const m: PortMapping = { Protocol, InternalPort, ExternalPort: host ? parsePort(host, spec, 'host port') : 0 };
  if (v6) m.HostIp = v6[1].toLowerCase();
  else if (ip) {
    const a = parseIPv4(ip, `host IP in '${spec}'`);
    if (a !== '0.0.0.0') m.HostIp = a;
  }
  return m;
}

/** All the -p flags; the same host address, port and protocol twice is an error. */
export function parsePublishList(list: string[]): PortMapping[] {
  const out = list.map(parsePublish);
  const seen = new Set<string>();
  for (const m of out) {
    if (m.ExternalPort === 0) continue; // each picked port is a different one
    const k = `${m.HostIp ?? '0.0.0.0'}:${m.ExternalPort}/${m.Protocol}`;
    const all = `0.0.0.0:${m.ExternalPort}/${m.Protocol}`;
    const clash = seen.has(k) || seen.has(all) || (!m.HostIp && [...seen].some((s) => s.endsWith(`:${m.ExternalPort}/${m.Protocol}`)));
    if (clash) throw new CliError(`host port ${m.ExternalPort}/${m.Protocol} is published more than once`);
    seen.add(k);
  }
  return out;
}

/** --network/--net, -p, --ip, --network-alias → Container.Networking (undefined when none was given). */
export function buildNetworking(f: Pick<CreateFlags, 'network' | 'net' | 'publish' | 'ip' | 'networkAlias' | 'macAddress' | 'dns' | 'dnsSearch' | 'dnsOption' | 'addHost'>): Networking | undefined {
  if (f.network !== undefined && f.net !== undefined && f.network !== f.net)
    throw new CliError(`conflicting options: --network ${f.network} and --net ${f.net}`);
  const network = f.network ?? f.net;
  if (network !== undefined && !network.trim()) throw new CliError('invalid --network: empty name');
  const n: Networking = {};
  if (network !== undefined) n.Network = network;
  const ports = parsePublishList(f.publish ?? []);
  if (ports.length) n.PortMappings = ports;
  if (f.ip !== undefined) n.IpAddress = parseIPv4(f.ip, '--ip address');
  const aliases = f.networkAlias ?? [];
  for (const a of aliases) if (!/^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(a)) throw new CliError(`invalid --network-alias '${a}'`);
  if (aliases.length) n.Aliases = aliases;
  if (f.macAddress !== undefined) {
    if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(f.macAddress)) throw new CliError(`invalid --mac-address '${f.macAddress}'`);
    n.MacAddress = f.macAddress;
  }
  if (f.dns?.length || f.dnsSearch?.length || f.dnsOption?.length) {
    n.Dns = {
      ...(f.dns?.length ? { Servers: f.dns.map((d) => parseIPv4(d, '--dns address')) } : {}),
      ...(f.dnsSearch?.length ? { Search: f.dnsSearch } : {}),
      ...(f.dnsOption?.length ? { Options: f.dnsOption } : {}),
    };
  }
  const hosts = (f.addHost ?? []).map(parseAddHost);
  if (hosts.length) n.ExtraHosts = hosts;
  if (network === 'none') {
    if (ports.length) throw new CliError('conflicting options: port publishing and --network none');
    if (f.ip !== undefined) throw new CliError('conflicting options: --ip and --network none');
    if (aliases.length) throw new CliError('conflicting options: --network-alias and --network none');
  }
  return Object.keys(n).length ? n : undefined;
}

export interface NetworkCreateFlags {
  driver?: string;
  subnet?: string[];
  gateway?: string[];
  opt?: string[];
  interface?: string;
  outboundNatException?: string[];
  ipv6?: boolean;
}

/** `silo network create` flags → the body of `POST /v1/networks`. */
export function buildNetworkRequest(name: string, f: NetworkCreateFlags): CreateNetworkRequest {
  const driver = (f.driver ?? 'nat').toLowerCase();
  const Type: NetworkType | undefined = driver === 'bridge' ? 'nat' : (driver as NetworkType);
  if (Type !== 'nat' && Type !== 'internal' && Type !== 'l2bridge') throw new CliError(`invalid driver '${f.driver}': nat, internal or l2bridge`);
  const req: CreateNetworkRequest = { Name: name, Type };
  let iface = f.interface;
  for (const o of f.opt ?? []) {
    const i = o.indexOf('=');
    const k = i < 0 ? o : o.slice(0, i);
    const v = i < 0 ? '' : o.slice(i + 1);
    if (k !== 'parent') throw new CliError(`invalid option '${o}': only parent=IFACE is supported`);
    if (!v) throw new CliError(`invalid option '${o}': parent needs an interface name`);
    if (iface !== undefined && iface !== v) throw new CliError(`conflicting options: --interface ${iface} and -o parent=${v}`);
    iface = v;
  }
  const subnets = (f.subnet ?? []).map((s) => parseCidr(s, '--subnet', true));
  const gateways = (f.gateway ?? []).map((g) => (isIPv6(g.trim()) ? g.trim() : parseIPv4(g, '--gateway')));
  if (subnets.some((s) => s.includes(':')) && !f.ipv6) throw new CliError('an IPv6 --subnet needs --ipv6 (a dual-stack network)');
  if (f.ipv6) req.EnableIpv6 = true;
  if (gateways.length > subnets.length) throw new CliError('every --gateway needs a --subnet (give them in pairs, in order)');
  if (subnets.length) req.Subnets = subnets.map((p, i) => (gateways[i] ? { IpAddressPrefix: p, GatewayAddress: gateways[i] } : { IpAddressPrefix: p }));
  if (Type === 'l2bridge') {
    if (!iface) throw new CliError('an l2bridge network needs its host interface: -o parent=IFACE or --interface IFACE');
    if (!subnets.length) throw new CliError("an l2bridge network needs --subnet (the LAN's subnet)");
  } else if (iface !== undefined) {
    throw new CliError(`-o parent / --interface is for l2bridge networks only (driver ${Type})`);
  }
  if (iface !== undefined) req.Interface = iface;
  const exceptions = (f.outboundNatException ?? []).map((e) => parseCidrOrIp(e, '--outbound-nat-exception'));
  if (exceptions.length) {
    if (Type !== 'nat') throw new CliError(`--outbound-nat-exception is for nat networks only (driver ${Type})`);
    req.Policies = [{ Type: 'OutBoundNAT', Settings: { Exceptions: exceptions } }];
  }
  return req;
}

type LbPort = CreateLoadBalancerRequest['PortMappings'][number];

/** `silo lb create -p`: `[proto:]external:internal` (or `external:internal/proto`). */
export function parseLbPort(spec: string): LbPort {
  const split = splitProtocol(spec);
  let Protocol: Protocol = split.Protocol;
  const parts = split.rest.split(':');
  if (parts.length === 3) {
    // A rest shorter than the spec means a /proto suffix was given too.
    if (split.rest !== spec.trim()) throw new CliError(`invalid port '${spec}': give the protocol once ([proto:]external:internal)`);
    Protocol = parseProtocol(parts.shift()!, spec);
  }
  if (parts.length !== 2 || !parts[0] || !parts[1])
    throw new CliError(`invalid port '${spec}': expected [tcp:|udp:]external:internal, e.g. 80:8080 or udp:53:5353`);
  return { Protocol, ExternalPort: parsePort(parts[0], spec, 'external port'), InternalPort: parsePort(parts[1], spec, 'internal port') };
}

export interface LbCreateFlags {
  name?: string;
  vip?: string[];
  port?: string[];
  sticky?: boolean;
}

/** `silo lb create` flags and backends → the body of `POST /v1/loadbalancers`. */
export function buildLoadBalancerRequest(backends: string[], f: LbCreateFlags): CreateLoadBalancerRequest {
  const ports = (f.port ?? []).map(parseLbPort);
  if (!ports.length) throw new CliError('a load balancer needs at least one -p/--port [proto:]external:internal');
  const seen = new Set<string>();
  for (const p of ports) {
    const k = `${p.ExternalPort}/${p.Protocol}`;
    if (seen.has(k)) throw new CliError(`port ${k} is given more than once`);
    seen.add(k);
  }
  if (f.sticky) for (const p of ports) p.DistributionType = 'SourceIP';
  const req: CreateLoadBalancerRequest = { PortMappings: ports };
  if (f.name !== undefined) req.Name = f.name;
  const vips = (f.vip ?? []).map((v) => parseIPv4(v, '--vip'));
  if (vips.length) req.FrontendVIPs = vips;
  if (backends.length) req.Endpoints = backends;
  return req;
}

/** `--restart no|always|unless-stopped|on-failure[:N]`, docker's spellings. */
export function parseRestart(v: string): { Name: 'no' | 'always' | 'unless-stopped' | 'on-failure'; MaximumRetryCount?: number } {
  const [name, count] = v.split(':');
  if (name === 'on-failure') return { Name: name, ...(count !== undefined ? { MaximumRetryCount: parseInteger(count, '--restart', 0) } : {}) };
  if ((name === 'no' || name === 'always' || name === 'unless-stopped') && count === undefined) return { Name: name };
  throw new CliError(`invalid restart policy ${JSON.stringify(v)}: use no, always, unless-stopped or on-failure[:max-retries]`);
}
