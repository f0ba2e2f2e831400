// Docker's create body (Config with HostConfig and NetworkingConfig embedded, checked against schemas.ts) → the
// compute service's create specification. Every option lands in the spec or is refused with docker's kind of
// message: nothing a user set is dropped. What the spec cannot hold for inspect goes in the DockerMeta sidecar.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { healthFromDocker, type DockerHealthcheck } from '../../compute/health.js';
import type { CreateSpec, Device, NamespaceRef, Security, SpecContainer, Tmpfs, Ulimit } from '../../compute/spec/schema.js';
import type { Image } from '../../storage/types.js';
import { IP6_FIXED } from './routes-networks.js';
import { dockerInvalid } from './errors.js';
import { dockerLogging, type LogSpec } from '../../common/logopts.js';
import type { DockerMeta } from './meta.js';
import { checkLink, linkEnv, parseLink, type LinkTarget } from './links.js';
import { portMappings } from './ports.js';
import { randomName } from '../../compute/resolve.js';
import type { ContainerCreate, HostConfig } from './schemas.js';
import type { StorageService } from '../../storage/types.js';

const MiB = 1024 * 1024;
type MappedDirectory = NonNullable<SpecContainer['MappedDirectories']>[number];
type Networking = NonNullable<SpecContainer['Networking']>;

function envMap(env: string[] | null | undefined): Record<string, string> | undefined {
  if (!env?.length) return undefined;
  const out: Record<string, string> = {};
  for (const e of env) {
    const i = e.indexOf('=');
    // "-e NAME" with NAME unset in the client's environment arrives without "=": docker unsets it (unsetEnv).
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

/** Bare names in Env (no "="): docker takes them out of the image's environment, as dockerd's env merge does. */
function unsetEnv(env: string[] | null | undefined): string[] | undefined {
  const names = (env ?? []).filter((e) => e !== '' && !e.includes('='));
  return names.length ? names : undefined;
}

const strs = (v: string[] | string | null | undefined): string[] | undefined => (Array.isArray(v) ? v : typeof v === 'string' && v ? [v] : undefined);

/** Set by the user: docker clients send zero values (0, "", false, [], {}, null) for everything else. */
export function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === 0 || v === '' || v === false) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** HostConfig fields Silo has no equivalent for: refused when set, with why. */
const UNSUPPORTED: Record<string, string> = {
  CgroupParent: 'containers live under the daemon\'s cgroup parent',
  BlkioWeight: 'block I/O weights are not supported (the --device-read/write-bps/iops limits are)',
  BlkioWeightDevice: 'block I/O weights are not supported (the --device-read/write-bps/iops limits are)',
  CpuRealtimePeriod: 'real-time CPU scheduling is not supported', CpuRealtimeRuntime: 'real-time CPU scheduling is not supported',
  CpusetMems: 'memory node pinning is not supported', DeviceCgroupRules: 'device cgroup rules are not supported (use --device)',
  DeviceRequests: 'GPU device requests are not supported', KernelMemory: 'kernel memory limits are not supported',
  KernelMemoryTCP: 'kernel memory limits are not supported',
  OomKillDisable: 'the OOM killer cannot be disabled', CpuCount: 'CpuCount is for Windows containers', CpuPercent: 'CpuPercent is for Windows containers',
  IOMaximumIOps: 'I/O limits are for Windows containers', IOMaximumBandwidth: 'I/O limits are for Windows containers',
  Cgroup: 'joining another container\'s cgroup is not supported', Annotations: 'annotations are not supported',
};

/** --device-read-bps and the rest → the spec's BlockIO (the device node's path and its rate, as docker sends them). */
function blockIOOf(hc: HostConfig): { BlockIO?: NonNullable<SpecContainer['BlockIO']> } {
  const rates = (l: { Path: string; Rate: number }[] | null | undefined) => (l?.length ? l.map((d) => ({ Path: d.Path, Rate: d.Rate })) : undefined);
  const b = { ReadBps: rates(hc.BlkioDeviceReadBps), WriteBps: rates(hc.BlkioDeviceWriteBps), ReadIops: rates(hc.BlkioDeviceReadIOps), WriteIops: rates(hc.BlkioDeviceWriteIOps) };
  const set = Object.fromEntries(Object.entries(b).filter(([, v]) => v));
  return Object.keys(set).length ? { BlockIO: set } : {};
}

/** docker's NetworkMode → the spec's Network name (undefined = the default nat network) or a shared namespace. */
export function networkOf(mode: string | null | undefined): string | undefined {
  const m = mode ?? '';
  if (m === '' || m === 'default' || m === 'bridge') return undefined; // Silo's default nat network
  if (m === 'host' || m.startsWith('container:')) throw dockerInvalid(`network mode ${m} is not a network: it shares a namespace (namespaceOf)`);
  return m;
}

/** `host`, `container:<id>` and the private defaults of --network/--pid/--ipc/--uts → a spec namespace reference. */
export function namespaceOf(flag: string, mode: string | null | undefined, privateModes: string[]): NamespaceRef | undefined {
  const m = mode ?? '';
  if (privateModes.includes(m)) return undefined;
  if (m === 'host') return { Mode: 'host' };
  if (m.startsWith('container:') && m.length > 10) return { Mode: 'system', Target: m.slice(10) };
  throw dockerInvalid(`invalid ${flag} mode: ${m}`);
}

/** `--tmpfs /run:size=1m,noexec` options → spec options (docker's size units and mode). */
function tmpfsOptions(spec: string): string[] {
  return spec.split(',').filter(Boolean).map((o) => {
    const m = /^size=(\d+(?:\.\d+)?)([kmgt]?)i?b?$/i.exec(o);
    if (!m) return o;
    const mult = { '': 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
    return `size=${Math.floor(Number(m[1]) * mult)}`;
  });
}

/** `--storage-opt size=64m` → the scratch cap in bytes; any other storage option is refused. */
export function scratchOf(opts: Record<string, string> | null | undefined): number | undefined {
  let size: number | undefined;
  for (const [k, v] of Object.entries(opts ?? {})) {
    if (k !== 'size') throw dockerInvalid(`unknown storage option: ${k} (Silo supports size)`);
    const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim());
    if (!m) throw dockerInvalid(`invalid storage option size: ${v}`);
    size = Math.floor(Number(m[1]) * { '': 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't']);
  }
  return size;
}

async function securityOf(hc: HostConfig, others: Others): Promise<Security | undefined> {
  const s: Security = {};
  if (hc.Privileged) s.Privileged = true;
  if (hc.CapAdd?.length) s.CapAdd = hc.CapAdd;
  if (hc.CapDrop?.length) s.CapDrop = hc.CapDrop;
  if (hc.ReadonlyRootfs) s.ReadOnlyRoot = true;
  if (hc.GroupAdd?.length) s.SupplementalGroups = hc.GroupAdd;
  if (hc.MaskedPaths) s.MaskedPaths = hc.MaskedPaths;
  if (hc.ReadonlyPaths) s.ReadonlyPaths = hc.ReadonlyPaths;
  for (const o of hc.SecurityOpt ?? []) {
    const [k, v = ''] = o.split(/[=:](.*)/s);
    if (k === 'no-new-privileges') {
      if (!['', 'true', 'false'].includes(v)) throw dockerInvalid(`invalid --security-opt: ${o}`);
      s.NoNewPrivileges = v !== 'false';
    } else if (k === 'seccomp' && v === 'unconfined') s.Seccomp = { Profile: 'unconfined' };
    else if (k === 'seccomp' && (v === 'builtin' || v === 'default')) s.Seccomp = { Profile: 'default' };
    // The docker CLI sends a profile file's JSON itself; it is kept by content and used as a localhost profile.
    else if (k === 'seccomp' && v.trimStart().startsWith('{')) s.Seccomp = { Profile: 'localhost', LocalhostPath: await others.seccompProfile(v) };
    else if (k === 'seccomp') throw dockerInvalid(`invalid --security-opt seccomp=${v}: give unconfined, default or a profile file`);
    else if (k === 'systempaths' && v === 'unconfined') Object.assign(s, { MaskedPaths: [], ReadonlyPaths: [] });
    else if (k === 'label' && v === 'disable') continue; // there are no SELinux labels to disable
    else if (k === 'apparmor' && v === 'unconfined') continue; // nor an AppArmor profile
    else throw dockerInvalid(`--security-opt ${o} is not supported by Silo (no-new-privileges, seccomp and systempaths=unconfined are)`);
  }
  return Object.keys(s).length ? s : undefined;
}

export interface Translated {
  req: CreateSpec;
  meta: DockerMeta;
  warnings: string[];
}

const PROPAGATIONS = ['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared'] as const;

/**
 * The mode of a `-v src:dst:mode` as dockerd reads it on Linux: ro/rw; z/Z (SELinux relabelling, a no-op on a host
 * without SELinux, as under dockerd there); consistent/cached/delegated (macOS hints dockerd accepts and ignores);
 * a propagation for a bind; nocopy for a volume. Anything else is refused, as dockerd refuses it.
 */
export function bindModes(spec: string, mode: string, isBind: boolean): { ro: boolean; nocopy: boolean; propagation?: MappedDirectory['Propagation'] } {
  const out: { ro: boolean; nocopy: boolean; propagation?: MappedDirectory['Propagation'] } = { ro: false, nocopy: false };
  const bad = () => dockerInvalid(`invalid volume specification: '${spec}': invalid mode: ${mode}`);
  let rw = 0;
  for (const o of mode ? mode.split(',') : []) {
    if (o === 'ro' || o === 'rw') {
      if (rw++) throw bad();
      out.ro = o === 'ro';
    } else if (o === 'z' || o === 'Z' || o === 'consistent' || o === 'cached' || o === 'delegated') continue;
    else if (o === 'nocopy' && !isBind && !out.nocopy) out.nocopy = true;
    else if ((PROPAGATIONS as readonly string[]).includes(o) && isBind && !out.propagation) out.propagation = o as MappedDirectory['Propagation'];
    else throw bad();
  }
  return out;
}

/** What translation needs beyond the body: other containers' mounts for --volumes-from, a place for a seccomp profile. */
export interface Others {
  volumesOf(ref: string): { mapped: MappedDirectory[]; mounts: DockerMeta['Mounts'] };
  /** Keep a seccomp profile's JSON; returns the host file the create spec names. */
  seccompProfile(json: string): Promise<string>;
  /** A container to link to (--link), with its address on `network` (undefined: the default network). */
  linkTarget(ref: string, network: string | undefined): Promise<LinkTarget>;
  /** Whether a container name is taken (a linking container needs its name before it is made). */
  nameTaken(name: string): boolean;
}

const noOthers: Others = {
  volumesOf: (ref) => { throw dockerInvalid(`No such container: ${ref}`); },
  linkTarget: (ref) => Promise.reject(dockerInvalid(`No such container: ${ref}`)),
  nameTaken: () => false,
  seccompProfile: () => Promise.reject(dockerInvalid('custom seccomp profiles need the daemon')),
};

/** The label that names a vm-isolated container's guest kernel: a Debian kernel package (docs/vm.md). */
export const VM_KERNEL_LABEL = 'io.silo.vm.kernel';

export async function translateCreate(body: ContainerCreate, name: string | undefined, image: Image, vols: Pick<StorageService, 'createVolume' | 'volumeSubpath'>, others: Others = noOthers): Promise<Translated> {
  const hc: HostConfig = body.HostConfig ?? {};
  // A link's variables name the linking container, so it is named now when the client gave no name.
  if (isSet(hc.Links) && !name) name = randomName((n) => others.nameTaken(n));
  const warnings: string[] = [];
  const iso = String(hc.Isolation ?? '');
  // Docker's hyperv is Silo's vm: a utility VM with its own kernel per container.
  if (!['', 'default', 'process', 'hyperv', 'vm'].includes(iso)) throw dockerInvalid(`invalid isolation (${iso}): Silo supports 'default', 'process' and 'hyperv' (or 'vm')`);
  const isolation = iso === 'hyperv' || iso === 'vm' ? 'vm' : iso === 'process' ? 'process' : undefined;
  // Docker has no field for a utility VM's kernel: a label names it (the compute service refuses it without hyperv).
  const kernel = body.Labels?.[VM_KERNEL_LABEL];
  if (kernel !== undefined && !String(kernel)) throw dockerInvalid(`the label ${VM_KERNEL_LABEL} names no kernel package`);
  for (const [k, why] of Object.entries(UNSUPPORTED)) if (isSet((hc as Record<string, unknown>)[k])) throw dockerInvalid(`HostConfig.${k} is not supported by Silo: ${why}`);
  if (hc.VolumeDriver && hc.VolumeDriver !== 'local') throw dockerInvalid(`volume driver ${hc.VolumeDriver} is not supported by Silo (local is)`);
  if (hc.UsernsMode && hc.UsernsMode !== 'host') throw dockerInvalid('user namespaces (--userns) are not supported by Silo');
  if (hc.CgroupnsMode === 'host') throw dockerInvalid('--cgroupns=host is not supported by Silo');
  if (hc.Runtime && hc.Runtime !== 'runc') throw dockerInvalid(`unknown runtime ${hc.Runtime}: Silo runs runc`);
  // CPU options as dockerd judges them; a period alone would set no limit and is not kept.
  const [nano, period, quota] = [hc.NanoCpus ?? 0, hc.CpuPeriod ?? 0, hc.CpuQuota ?? 0];
  if (nano > 0 && period > 0) throw dockerInvalid('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano > 0 && quota > 0) throw dockerInvalid('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (period !== 0 && (period < 1000 || period > 1000000)) throw dockerInvalid('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (quota > 0 && quota < 1000) throw dockerInvalid('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (period > 0 && quota <= 0) throw dockerInvalid('--cpu-period without --cpu-quota is not supported by Silo: it sets no limit');
  let logging: LogSpec;
  try {
    logging = dockerLogging(hc.LogConfig?.Type ?? undefined, hc.LogConfig?.Config ?? {});
  } catch (e) {
    throw dockerInvalid((e as Error).message);
  }

  // Mounts: Binds, Mounts, anonymous volumes (Config.Volumes and the image's VOLUMEs) and --volumes-from.
  const mapped: MappedDirectory[] = [];
  const tmpfs: Tmpfs[] = [];
  const mounts: DockerMeta['Mounts'] = [];
  const taken = new Set<string>();
  // copy: docker's copy-up of what the image holds at the target into an empty volume (nocopy turns it off).
  const volume = async (vname: string | undefined, target: string, ro: boolean, subpath?: string, copy = true) => {
    // A subpath is of an existing volume: checked first, so a refusal leaves no volume made for nothing.
    if (subpath && !vname) throw dockerInvalid('volume-subpath needs a named volume');
    const sub = subpath ? await vols.volumeSubpath(vname!, subpath) : undefined;
    const v = await vols.createVolume(vname ?? randomBytes(32).toString('hex'), { labels: vname ? {} : { 'com.docker.volume.anonymous': '' } });
    const part = sub && sub !== '.' ? { Subpath: sub } : copy ? { PopulateFromImage: true } : {};
    mapped.push({ HostPath: v.Mountpoint, ...part, ContainerPath: target, ReadOnly: ro });
    mounts.push({ Type: 'volume', Name: v.Name, Source: v.Mountpoint, Destination: target, Driver: 'local', Mode: ro ? 'ro' : 'z', RW: !ro, Propagation: '' });
    taken.add(target);
  };
  const bind = (src: string, target: string, ro: boolean, mode: string, propagation?: MappedDirectory['Propagation']) => {
    mapped.push({ HostPath: src, ContainerPath: target, ReadOnly: ro, ...(propagation ? { Propagation: propagation } : {}) });
    mounts.push({ Type: 'bind', Source: src, Destination: target, Mode: mode, RW: !ro, Propagation: 'rprivate' });
    taken.add(target);
  };
  const tmp = (target: string, options: string[]) => {
    tmpfs.push({ ContainerPath: target, ...(options.length ? { Options: options } : {}) });
    mounts.push({ Type: 'tmpfs', Source: '', Destination: target, Mode: '', RW: !options.includes('ro'), Propagation: '' });
    taken.add(target);
  };
  for (const b of hc.Binds ?? []) {
    const parts = b.split(':');
    if (parts.length < 2 || parts.length > 3) throw dockerInvalid(`invalid volume specification: '${b}'`);
    const [src, target, opts = ''] = parts;
    if (!isAbsolute(target)) throw dockerInvalid(`invalid volume specification: '${b}': invalid mount config: mount path must be absolute`);
    const m = bindModes(b, opts, isAbsolute(src));
    if (isAbsolute(src)) bind(src, target, m.ro, opts, m.propagation);
    else await volume(src, target, m.ro, undefined, !m.nocopy);
  }
  for (const m of hc.Mounts ?? []) {
    const target = String(m.Target ?? '');
    if (!isAbsolute(target)) throw dockerInvalid(`invalid mount config: mount path must be absolute: ${target}`);
    if (m.VolumeOptions?.Subpath && m.Type !== 'volume') throw dockerInvalid('volume-subpath is only for volume mounts');
    if (m.Type === 'bind') bind(String(m.Source), target, !!m.ReadOnly, '');
    else if (m.Type === 'volume') await volume(m.Source ? String(m.Source) : undefined, target, !!m.ReadOnly, m.VolumeOptions?.Subpath ? String(m.VolumeOptions.Subpath) : undefined, !m.VolumeOptions?.NoCopy);
    else if (m.Type === 'tmpfs') {
      const t = m.TmpfsOptions ?? {};
      tmp(target, [...(m.ReadOnly ? ['ro'] : []), ...(t.SizeBytes ? [`size=${t.SizeBytes}`] : []), ...(t.Mode ? [`mode=${t.Mode.toString(8)}`] : [])]);
    } else throw dockerInvalid(`mount type ${JSON.stringify(m.Type)} is not supported by Silo (bind, volume and tmpfs are)`);
  }
  for (const [target, opts] of Object.entries(hc.Tmpfs ?? {})) {
    if (!isAbsolute(target)) throw dockerInvalid(`invalid tmpfs mount path: ${target}: must be absolute`);
    tmp(target, tmpfsOptions(opts));
  }
  for (const spec of hc.VolumesFrom ?? []) {
    const [ref, mode = ''] = spec.split(':');
    if (!['', 'ro', 'rw'].includes(mode)) throw dockerInvalid(`invalid mode for --volumes-from ${spec}: use ro or rw`);
    const from = others.volumesOf(ref);
    for (const [i, d] of from.mapped.entries()) {
      if (taken.has(d.ContainerPath)) continue;
      const ro = mode === 'ro' || (mode === '' && !!d.ReadOnly);
      mapped.push({ ...d, ReadOnly: ro });
      const m = from.mounts.find((x) => x.Destination === d.ContainerPath) ?? from.mounts[i];
      if (m) mounts.push({ ...m, RW: !ro });
      taken.add(d.ContainerPath);
    }
  }
  for (const t of [...Object.keys(body.Volumes ?? {}), ...Object.keys(image.config.Volumes ?? {})]) if (!taken.has(t)) await volume(undefined, t, false);

  // Resources. docker's CPU shares are cgroup cpu.shares (Processor.Shares), beside a quota as in docker.
  const processor: { Count?: number; Shares?: number; CpusetCpus?: string } = {};
  if (hc.NanoCpus && hc.NanoCpus > 0) processor.Count = hc.NanoCpus / 1e9;
  else if (hc.CpuQuota && hc.CpuQuota > 0) processor.Count = hc.CpuQuota / (hc.CpuPeriod && hc.CpuPeriod > 0 ? hc.CpuPeriod : 100000);
  if (hc.CpuShares && hc.CpuShares > 0) processor.Shares = Math.min(262144, Math.max(2, hc.CpuShares));
  if (hc.CpusetCpus) processor.CpusetCpus = hc.CpusetCpus;
  const memory = hc.Memory ?? 0;
  if (memory > 0 && memory < 6 * MiB) throw dockerInvalid('Minimum memory limit allowed is 6MB');
  const swap = hc.MemorySwap ?? 0;
  if (swap > 0 && memory === 0) throw dockerInvalid('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (swap > 0 && swap < memory) throw dockerInvalid('Minimum memoryswap limit should be larger than memory limit, see usage');
  // This host has no swap accounting: a swap allowance beyond the memory limit cannot be enforced.
  if (swap > memory) throw dockerInvalid('--memory-swap larger than --memory is not supported by Silo: this kernel has no swap accounting (swap limit = memory limit, or -1)');
  const swappiness = hc.MemorySwappiness ?? -1;
  const reservation = hc.MemoryReservation ?? 0;
  const mem = { ...(memory > 0 ? { SizeInMB: memory / MiB } : {}), ...(swappiness >= 0 ? { Swappiness: swappiness } : {}), ...(reservation > 0 ? { ReservationInBytes: reservation } : {}) };

  const exposed = [...new Set([...Object.keys(image.config.ExposedPorts ?? {}), ...Object.keys(body.ExposedPorts ?? {})])];
  const mode = hc.NetworkMode ?? '';
  const sharedNet = body.NetworkDisabled ? undefined : namespaceOf('network', mode === 'host' || mode.startsWith('container:') ? mode : '', ['']);
  const netName = body.NetworkDisabled ? 'none' : sharedNet ? undefined : networkOf(mode);
  const endpoints: Record<string, any> = body.NetworkingConfig?.EndpointsConfig ?? {};
  const epc = endpoints[hc.NetworkMode ?? 'default'] ?? Object.values(endpoints)[0] ?? {};
  for (const [n, e] of Object.entries(endpoints)) if (isSet(e?.DriverOpts)) throw dockerInvalid(`EndpointsConfig.${n}.DriverOpts is not supported by Silo: its endpoints take no driver options`);
  const networking: Networking = {};
  const linkVars: string[] = [];
  const links: string[] = [];
  if (sharedNet) {
    if (isSet(hc.Links)) throw dockerInvalid('conflicting options: links and the network mode');
    if (isSet(hc.PortBindings) || hc.PublishAllPorts) throw dockerInvalid('conflicting options: port publishing and the container type network mode');
    if (isSet(hc.Dns) || isSet(hc.DnsSearch) || isSet(hc.DnsOptions)) throw dockerInvalid('conflicting options: dns and the network mode');
    if (isSet(hc.ExtraHosts) && sharedNet.Mode !== 'host') throw dockerInvalid('conflicting options: custom host-to-IP mapping and the network mode');
    if (isSet(hc.ExtraHosts)) throw dockerInvalid('--add-host with --network host is not supported by Silo (the host\'s /etc/hosts is used)');
    if (body.Hostname) throw dockerInvalid('conflicting options: hostname and the network mode');
  } else {
    const ports = await portMappings(hc.PortBindings ?? undefined, !!hc.PublishAllPorts, exposed);
    if (netName) networking.Network = netName;
    if (epc.IPAMConfig?.IPv4Address) networking.IpAddress = epc.IPAMConfig.IPv4Address;
    if (Object.values(endpoints).some((e) => e?.IPAMConfig?.IPv6Address)) throw dockerInvalid(IP6_FIXED);
    if (epc.Aliases?.length) networking.Aliases = epc.Aliases.map(String);
    if (ports.mappings.length) networking.PortMappings = ports.mappings;
    const mac = epc.MacAddress || body.MacAddress;
    if (mac) networking.MacAddress = String(mac);
    if (isSet(hc.Dns) || isSet(hc.DnsSearch) || isSet(hc.DnsOptions)) networking.Dns = { ...(hc.Dns?.length ? { Servers: hc.Dns } : {}), ...(hc.DnsSearch?.length ? { Search: hc.DnsSearch } : {}), ...(hc.DnsOptions?.length ? { Options: hc.DnsOptions } : {}) };
    if (isSet(hc.ExtraHosts)) networking.ExtraHosts = hc.ExtraHosts!.map(extraHost);
    if (isSet(hc.Links)) {
      if (netName === 'none') throw dockerInvalid('conflicting options: links and the network mode none');
      const hosts = networking.ExtraHosts ?? [];
      for (const spec of hc.Links!) {
        const { ref, alias } = parseLink(spec);
        const l = { target: await others.linkTarget(ref, netName), alias };
        checkLink(l, name);
        for (const h of new Set([alias, l.target.name])) hosts.push({ Name: h, IpAddress: l.target.ip! });
        // dockerd gives the variables on its default network only; on a user network a link is a name.
        if (netName === undefined) linkVars.push(...linkEnv(l, name!));
        links.push(`/${l.target.name}:/${name}/${alias}`);
      }
      networking.ExtraHosts = hosts;
    }
    if (netName === 'none' && ports.mappings.length) throw dockerInvalid('conflicting options: port publishing and the container type network mode');
    if (netName === 'none' && mac) throw dockerInvalid('conflicting options: mac-address and the network mode');
  }
  const pid = namespaceOf('pid', hc.PidMode, ['']);
  const ipc = namespaceOf('ipc', hc.IpcMode, ['', 'private', 'shareable']);
  const uts = namespaceOf('uts', hc.UTSMode, ['']);
  if (uts?.Mode === 'system') throw dockerInvalid(`invalid UTS mode: ${hc.UTSMode}`);
  if (uts && body.Hostname) throw dockerInvalid('conflicting options: hostname and the UTS mode');
  if (uts && body.Domainname) throw dockerInvalid('conflicting options: domainname and the UTS mode');
  const namespaces = { ...(sharedNet ? { Network: sharedNet } : {}), ...(pid ? { Pid: pid } : {}), ...(ipc ? { Ipc: ipc } : {}), ...(uts ? { Uts: uts } : {}) };

  const restart = hc.RestartPolicy?.Name ?? 'no';
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(restart)) throw dockerInvalid(`invalid restart policy '${restart}'`);
  if (hc.AutoRemove && restart !== '' && restart !== 'no') throw dockerInvalid('can\'t create \'AutoRemove\' container with restart policy');

  const devices: Device[] = (hc.Devices ?? []).map((d) => ({
    PathOnHost: d.PathOnHost, ...(d.PathInContainer ? { PathInContainer: d.PathInContainer } : {}), ...(d.CgroupPermissions ? { Permissions: d.CgroupPermissions } : {}),
  }));
  const ulimits: Ulimit[] = (hc.Ulimits ?? []).map((u) => ({ Name: u.Name, Soft: u.Soft, Hard: u.Hard }));
  const scratch = scratchOf(hc.StorageOpt);
  const security = await securityOf(hc, others);
  const stopTimeout = body.StopTimeout === undefined || body.StopTimeout === null ? undefined : Number(body.StopTimeout);
  const container: NonNullable<NonNullable<CreateSpec['Document']>['Container']> = {
    ...(body.Hostname ? { GuestOs: { HostName: String(body.Hostname) } } : {}),
    ...(scratch !== undefined ? { Storage: { ScratchSizeInBytes: scratch } } : {}),
    MappedDirectories: mapped,
    ...(tmpfs.length ? { Tmpfs: tmpfs } : {}),
    ...(devices.length ? { Devices: devices } : {}),
    ...(Object.keys(mem).length ? { Memory: mem } : {}),
    ...(Object.keys(processor).length ? { Processor: processor } : {}),
    ...(hc.PidsLimit && hc.PidsLimit > 0 ? { Pids: { Limit: hc.PidsLimit } } : {}),
    ...blockIOOf(hc),
    ...(hc.ShmSize ? { ShmSizeInBytes: hc.ShmSize } : {}),
    ...(ulimits.length ? { Ulimits: ulimits } : {}),
    // --domainname is the UTS namespace's domain name, set as its sysctl (runc 1.1 has no domainname of its own).
    ...(isSet(hc.Sysctls) || body.Domainname ? { Sysctls: { ...(hc.Sysctls ?? {}), ...(body.Domainname ? { 'kernel.domainname': body.Domainname } : {}) } } : {}),
    ...(hc.OomScoreAdj ? { OomScoreAdj: oomScoreAdj(hc.OomScoreAdj) } : {}),
    ...(Object.keys(networking).length ? { Networking: networking } : {}),
    ...(Object.keys(namespaces).length ? { Namespaces: namespaces } : {}),
    ...(security ? { Security: security } : {}),
    ...(Object.keys(logging).length ? { Logging: logging } : {}),
  };
  const req: CreateSpec = {
    ...(name ? { Name: name } : {}),
    Image: String(body.Image),
    Document: {
      ...(isolation ? { Isolation: isolation } : {}),
      Container: container,
      Process: {
        ...(strs(body.Cmd) ? { CommandArgs: strs(body.Cmd) } : {}),
        // An explicit empty entrypoint clears the image's: the docker CLI sends `--entrypoint ""` as [""].
        ...(Array.isArray(body.Entrypoint) || typeof body.Entrypoint === 'string' ? { Entrypoint: (strs(body.Entrypoint) ?? []).join('') === '' ? [] : strs(body.Entrypoint)! } : {}),
        ...(body.WorkingDir ? { WorkingDirectory: String(body.WorkingDir) } : {}),
        ...(envMap(body.Env) || linkVars.length ? { Environment: { ...envMap(linkVars), ...envMap(body.Env) } } : {}),
        ...(unsetEnv(body.Env) ? { UnsetEnvironment: unsetEnv(body.Env) } : {}),
        ...(body.User ? { User: String(body.User) } : {}),
        EmulateConsole: !!body.Tty,
        CreateStdInPipe: !!body.OpenStdin,
        ...(body.OpenStdin && body.StdinOnce === false ? { StdinOnce: false } : {}),
        ...(Array.isArray(hc.ConsoleSize) && hc.ConsoleSize[0] > 0 ? { ConsoleSize: [hc.ConsoleSize[0], hc.ConsoleSize[1] ?? 0] as [number, number] } : {}),
      },
      ...(body.StopSignal ? { StopSignal: String(body.StopSignal) } : {}),
      ...(stopTimeout !== undefined && stopTimeout >= 0 ? { StopTimeoutSeconds: stopTimeout } : {}),
      AutoRemove: !!hc.AutoRemove,
      ...(hc.Init ? { Init: true } : {}),
      ...(restart && restart !== 'no' ? { RestartPolicy: { Name: restart as 'always', MaximumRetryCount: hc.RestartPolicy?.MaximumRetryCount ?? 0 } } : {}),
      ...(body.Labels && Object.keys(body.Labels).length ? { Labels: body.Labels } : {}),
      ...(body.Healthcheck?.Test?.length ? { HealthCheck: healthFromDocker(body.Healthcheck as DockerHealthcheck) } : {}),
      ...(kernel !== undefined ? { VirtualMachine: { KernelPackage: String(kernel) } } : {}),
    },
  };
  const { HostConfig: _h, NetworkingConfig: _n, ...config } = body;
  const meta: DockerMeta = {
    Config: config,
    HostConfig: { ...hc, ...(links.length ? { Links: links } : {}), RestartPolicy: { Name: restart || 'no', MaximumRetryCount: hc.RestartPolicy?.MaximumRetryCount ?? 0 } },
    Networks: endpoints,
    Mounts: mounts,
  };
  return { req, meta, warnings };
}

/** `--add-host name:ip` (or `name=ip`, as newer clients send); docker's `host-gateway` is not resolved by Silo. */
export function extraHost(s: string): { Name: string; IpAddress: string } {
  const i = s.search(/[:=]/);
  const name = i < 0 ? '' : s.slice(0, i);
  const ip = i < 0 ? '' : s.slice(i + 1).replace(/^\[(.*)\]$/, '$1');
  if (!name || !ip) throw dockerInvalid(`invalid argument "${s}" for "--add-host": expected host:ip`);
  if (ip === 'host-gateway') throw dockerInvalid('--add-host ...:host-gateway is not supported by Silo: give the address');
  return { Name: name, IpAddress: ip };
}

/** `--oom-score-adj`: the spec raises a value below the daemon's own to it (root here cannot lower it); docker's
 *  user asked for that exact value, so below the daemon's own is refused rather than quietly raised. */
function oomScoreAdj(v: number): number {
  const own = Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim()) || 0;
  if (v < own) throw dockerInvalid(`--oom-score-adj ${v} is below the daemon's own (${own}), which root here cannot lower (no CAP_SYS_RESOURCE)`);
  return v;
}

/** shares 2..262144 → HCS Weight 1..10000 (the inverse of the backend's mapping). */
export const sharesToWeight = (s: number) => Math.min(10000, Math.max(1, Math.round(1 + ((s - 2) * 9999) / (262144 - 2))));

