// A CRI ContainerConfig as Silo's one create specification. Pure apart from the image it is given: every CRI field is
// mapped or refused with a one-line reason, never dropped.

import { arch } from 'node:os';
import { join } from 'node:path';
import { invalid } from '../../common/errors.js';
import type { Image } from '../../storage/types.js';
import { CRI_OWNER, metaLabels, systemName, type ContainerMeta, type NsMode, type SandboxMeta } from './meta.js';

export interface CriResources {
  cpu_period: number;
  cpu_quota: number;
  cpu_shares: number;
  memory_limit_in_bytes: number;
  oom_score_adj: number;
  cpuset_cpus: string;
  cpuset_mems: string;
  hugepage_limits: { page_size: string; limit: number }[];
  unified: Record<string, string>;
  memory_swap_limit_in_bytes: number;
}

interface SecurityProfile {
  profile_type: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhost_ref: string;
}

export interface ContainerConfig {
  metadata?: { name: string; attempt: number };
  image?: { image: string; annotations: Record<string, string>; user_specified_image: string; runtime_handler: string };
  command: string[];
  args: string[];
  working_dir: string;
  envs: { key: string; value: string }[];
  mounts: { container_path: string; host_path: string; readonly: boolean; propagation: string; recursive_read_only: boolean; image?: { image: string } | null; uidMappings: unknown[]; gidMappings: unknown[] }[];
  devices: { container_path: string; host_path: string; permissions: string }[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  log_path: string;
  stdin: boolean;
  stdin_once: boolean;
  tty: boolean;
  linux?: {
    resources?: CriResources | null;
    security_context?: {
      capabilities?: { add_capabilities: string[]; drop_capabilities: string[]; add_ambient_capabilities: string[] } | null;
      privileged: boolean;
      namespace_options?: { network: NsMode; pid: NsMode; ipc: NsMode; target_id: string; userns_options?: { mode: NsMode } | null } | null;
      run_as_user?: { value: number } | null;
      run_as_group?: { value: number } | null;
      run_as_username: string;
      readonly_rootfs: boolean;
      supplemental_groups: number[];
      no_new_privs: boolean;
      masked_paths: string[];
      readonly_paths: string[];
      seccomp?: SecurityProfile | null;
      apparmor?: SecurityProfile | null;
      seccomp_profile_path: string;
      apparmor_profile: string;
    } | null;
  } | null;
  CDI_devices: { name: string }[];
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
export const HOST_PLATFORM = { os: 'linux', architecture: GOARCH[arch()] ?? arch() };

/** An image for another platform would fail inside the container with "exec format error": refuse it here. */
export function checkPlatform(img: Pick<Image, 'os' | 'architecture'>, ref: string, host = HOST_PLATFORM): void {
  const os = img.os || 'linux';
  const a = img.architecture || host.architecture;
  if (os !== host.os || a !== host.architecture) {
    throw invalid(`image ${ref} is for ${os}/${a}; this node runs ${host.os}/${host.architecture}`);
  }
}

/** The seccomp choice of the CRI: the typed profile, else the deprecated path field, else none (as containerd). */
function seccompOf(sc: NonNullable<NonNullable<ContainerConfig['linux']>['security_context']>): { Profile: 'default' | 'unconfined' | 'localhost'; LocalhostPath?: string } {
  const p = sc.seccomp;
  if (p) {
    if (p.profile_type === 'RuntimeDefault') return { Profile: 'default' };
    if (p.profile_type === 'Unconfined') return { Profile: 'unconfined' };
    if (!p.localhost_ref.startsWith('/')) throw invalid(`seccomp localhost profile ${JSON.stringify(p.localhost_ref)} must be an absolute path`);
    return { Profile: 'localhost', LocalhostPath: p.localhost_ref };
  }
  const path = sc.seccomp_profile_path;
  if (!path || path === 'unconfined') return { Profile: 'unconfined' };
  if (path === 'runtime/default' || path === 'docker/default') return { Profile: 'default' };
  if (path.startsWith('localhost/')) return { Profile: 'localhost', LocalhostPath: path.slice('localhost'.length) };
  throw invalid(`unknown seccomp profile ${JSON.stringify(path)}`);
}

function checkAppArmor(sc: NonNullable<NonNullable<ContainerConfig['linux']>['security_context']>): void {
  // This host has no AppArmor: the default and unconfined profiles both mean no profile; a named one cannot be had.
  if (sc.apparmor?.profile_type === 'Localhost' || (sc.apparmor_profile && !['runtime/default', 'unconfined'].includes(sc.apparmor_profile))) {
    throw invalid('AppArmor profiles are not available on this host');
  }
}

function namespaceRef(mode: NsMode, sandboxId: string, targetId: string, kind: string) {
  switch (mode) {
    case 'POD':
      return { Mode: 'system', Target: sandboxId };
    case 'NODE':
      return { Mode: 'host' };
    case 'CONTAINER':
      return kind === 'Pid' ? { Mode: 'private' } : invalidMode(kind, mode);
    case 'TARGET':
      if (kind !== 'Pid' || !targetId) return invalidMode(kind, mode);
      return { Mode: 'system', Target: targetId };
  }
  return invalidMode(kind, mode);
}

function invalidMode(kind: string, mode: string): never {
  throw invalid(`namespace mode ${mode} is not supported for the ${kind.toLowerCase()} namespace`);
}

/** CRI resources as the spec's memory and processor settings. */
export function resourcesSpec(r: CriResources | null | undefined): Record<string, unknown> {
  if (!r) return {};
  if (r.cpuset_mems) throw invalid('cpuset_mems is not supported by Silo');
  if (Object.keys(r.unified ?? {}).length) throw invalid('unified cgroup v2 resources are not supported on this cgroup v1 host');
  // The kubelet lists every huge page size with its limit; Silo gives containers no huge pages, so only 0 is honoured.
  for (const h of r.hugepage_limits ?? []) if (h.limit > 0) throw invalid(`huge pages (${h.page_size}) are not supported by Silo`);
  const out: Record<string, unknown> = {};
  if (r.memory_limit_in_bytes > 0) {
    out.Memory = { SizeInMB: r.memory_limit_in_bytes / (1024 * 1024) };
    if (r.memory_swap_limit_in_bytes > 0 && r.memory_swap_limit_in_bytes !== r.memory_limit_in_bytes) throw invalid('swap is not given to containers by Silo: memory_swap_limit_in_bytes must equal the memory limit');
  } else if (r.memory_swap_limit_in_bytes > 0) throw invalid('memory_swap_limit_in_bytes needs memory_limit_in_bytes');
  const proc: Record<string, unknown> = {};
  if (r.cpu_quota > 0) proc.Count = r.cpu_quota / (r.cpu_period > 0 ? r.cpu_period : 100000);
  if (r.cpu_shares > 0) proc.Shares = Math.min(262144, Math.max(2, r.cpu_shares));
  if (r.cpuset_cpus) proc.CpusetCpus = r.cpuset_cpus;
  if (Object.keys(proc).length) out.Processor = proc;
  if (r.oom_score_adj) out.OomScoreAdj = Math.min(1000, Math.max(-1000, r.oom_score_adj));
  return out;
}

export interface TranslateInput {
  sandboxId: string;
  sandbox: SandboxMeta;
  config: ContainerConfig;
  image: Image;
  isolation: string;
}

/** The create specification and CRI metadata of a container in a pod sandbox. */
export function containerSpec(i: TranslateInput): { spec: Record<string, unknown>; meta: ContainerMeta } {
  const c = i.config;
  const md = c.metadata;
  if (!md?.name) throw invalid('container config needs metadata with a name');
  const ref = c.image?.image ?? '';
  checkPlatform(i.image, ref);
  if (c.CDI_devices?.length) throw invalid('CDI devices are not supported by Silo');
  const sb = i.sandbox;
  const logPath = sb.logDirectory && c.log_path ? join(sb.logDirectory, c.log_path) : '';
  const meta: ContainerMeta = {
    kind: 'container',
    sandboxId: i.sandboxId,
    metadata: { name: md.name, attempt: md.attempt },
    labels: c.labels ?? {},
    annotations: c.annotations ?? {},
    image: { image: ref, annotations: c.image?.annotations ?? {}, user_specified_image: c.image?.user_specified_image || undefined, runtime_handler: c.image?.runtime_handler || undefined },
    logPath,
    mounts: c.mounts ?? [],
    resources: c.linux?.resources ?? undefined,
  };
  const sc = c.linux?.security_context ?? undefined;
  const nso = sc?.namespace_options;
  if (nso?.userns_options && nso.userns_options.mode !== 'NODE') throw invalid('user namespaces are not supported by Silo');
  const hostNet = sb.namespaces.network === 'NODE';
  const env: Record<string, string> = {};
  for (const e of c.envs ?? []) env[e.key] = e.value;

  const mounts = (c.mounts ?? []).map((m) => {
    if (m.image) throw invalid(`image volumes are not supported by Silo (mount at ${m.container_path})`);
    if (m.uidMappings?.length || m.gidMappings?.length) throw invalid(`id-mapped mounts are not supported by Silo (mount at ${m.container_path})`);
    if (m.recursive_read_only) throw invalid(`recursive read-only mounts are not supported by Silo (mount at ${m.container_path})`);
    const prop = m.propagation === 'PROPAGATION_BIDIRECTIONAL' ? 'rshared' : m.propagation === 'PROPAGATION_HOST_TO_CONTAINER' ? 'rslave' : undefined;
    return { HostPath: m.host_path, ContainerPath: m.container_path, ...(m.readonly ? { ReadOnly: true } : {}), ...(prop ? { Propagation: prop } : {}) };
  });

  const security: Record<string, unknown> = {};
  if (sc) {
    checkAppArmor(sc);
    if (sc.privileged) security.Privileged = true;
    if (sc.capabilities?.add_ambient_capabilities?.length) throw invalid('ambient capabilities are not supported by Silo');
    if (sc.capabilities?.add_capabilities?.length) security.CapAdd = sc.capabilities.add_capabilities;
    if (sc.capabilities?.drop_capabilities?.length) security.CapDrop = sc.capabilities.drop_capabilities;
    if (sc.readonly_rootfs) security.ReadOnlyRoot = true;
    security.NoNewPrivileges = sc.no_new_privs;
    if (!sc.privileged) security.Seccomp = seccompOf(sc);
    if (sc.run_as_user) security.RunAsUser = sc.run_as_user.value;
    if (sc.run_as_group) {
      if (!sc.run_as_user && !sc.run_as_username) throw invalid('run_as_group needs run_as_user or run_as_username');
      security.RunAsGroup = sc.run_as_group.value;
    }
    if (sc.supplemental_groups?.length) security.SupplementalGroups = sc.supplemental_groups;
    if (sc.masked_paths?.length) security.MaskedPaths = sc.masked_paths;
    if (sc.readonly_paths?.length) security.ReadonlyPaths = sc.readonly_paths;
  } else {
    security.Seccomp = { Profile: 'unconfined' };
    security.NoNewPrivileges = false;
  }

  const namespaces = {
    Network: hostNet ? { Mode: 'host' } : namespaceRef(nso?.network ?? 'POD', i.sandboxId, '', 'Network'),
    Ipc: namespaceRef(nso?.ipc ?? 'POD', i.sandboxId, '', 'Ipc'),
    Pid: namespaceRef(nso?.pid ?? 'POD', i.sandboxId, nso?.target_id ?? '', 'Pid'),
    Uts: hostNet ? { Mode: 'host' } : { Mode: 'system', Target: i.sandboxId },
  };

  const spec = {
    Name: systemName([md.name, sb.metadata.name, sb.metadata.namespace, sb.metadata.uid, String(md.attempt)]),
    Image: i.image.id,
    Document: {
      Owner: CRI_OWNER,
      Isolation: i.isolation,
      // A vm pod's containers run in its sandbox's utility VM, as hcsshim runs a Hyper-V-isolated pod's.
      ...(i.isolation === 'vm' ? { HostingSystemId: i.sandboxId } : {}),
      Labels: metaLabels(meta),
      Process: {
        ...(c.command?.length ? { Entrypoint: c.command } : {}),
        ...(c.args?.length ? { CommandArgs: c.args } : {}),
        ...(c.working_dir ? { WorkingDirectory: c.working_dir } : {}),
        ...(Object.keys(env).length ? { Environment: env } : {}),
        ...(sc?.run_as_username ? { User: sc.run_as_username } : {}),
        ...(c.tty ? { EmulateConsole: true } : {}),
        // stdin_once: the first attach that carried stdin closes it when it ends; without it (and, as containerd,
        // with a tty) it stays open across attaches.
        ...(c.stdin ? { CreateStdInPipe: true, ...(c.stdin_once && !c.tty ? {} : { StdinOnce: false }) } : {}),
      },
      Container: {
        // The hostname comes with the sandbox's UTS namespace, which every container joins.
        ...(mounts.length ? { MappedDirectories: mounts } : {}),
        ...((c.devices ?? []).length ? { Devices: c.devices.map((d) => ({ PathOnHost: d.host_path, PathInContainer: d.container_path, ...(d.permissions ? { Permissions: d.permissions } : {}) })) } : {}),
        ...resourcesSpec(c.linux?.resources),
        // A vm pod's VM is in the pod's cgroup as a whole.
        ...(sb.cgroupParent && i.isolation !== 'vm' ? { CgroupParent: sb.cgroupParent } : {}),
        Namespaces: namespaces,
        Security: security,
        Logging: logPath ? { Path: logPath } : {},
      },
    },
  };
  return { spec, meta };
}
