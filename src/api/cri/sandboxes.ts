// Pod sandboxes. A sandbox is an infra compute system (tini reaping for a sleeping process, from the built-in busybox
// image) that owns the pod's network namespace and endpoint (made by the network service when the system is created),
// its hostname, resolv.conf and host ports; the pod's containers join its network, IPC, UTS and (when shared) PID
// namespaces. Its CRI metadata lives in the system's labels (meta.ts), so it survives a daemon restart with it.

import { isSiloError, SiloError } from '../../common/errors.js';
import type { ComputeSystemRecord, CreateSystemRequest } from '../../compute/types.js';
import type { Services } from '../../host/services.js';
import { CRI_OWNER, metaLabels, metaOf, nanos, selects, systemName, type NsMode, type SandboxMeta } from './meta.js';
import { isolationOf, POD_NETWORK } from './runtime.js';
import { invalid } from '../../common/errors.js';
import { cpus as hostCpus } from 'node:os';

const cpuCount = () => hostCpus().length;

export interface PodSandboxConfig {
  metadata?: { name: string; uid: string; namespace: string; attempt: number };
  hostname: string;
  log_directory: string;
  dns_config?: { servers: string[]; searches: string[]; options: string[] };
  port_mappings: { protocol: string; container_port: number; host_port: number; host_ip: string }[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  linux?: {
    cgroup_parent: string;
    security_context?: {
      namespace_options?: { network: NsMode; pid: NsMode; ipc: NsMode };
      privileged: boolean;
      readonly_rootfs: boolean;
      run_as_user?: { value: number } | null;
      run_as_group?: { value: number } | null;
      supplemental_groups: number[];
      seccomp?: { profile_type: string; localhost_ref: string } | null;
      seccomp_profile_path: string;
    } | null;
    sysctls: Record<string, string>;
    /** The pod's total and the runtime's overhead (sent for runtimes that size a VM per pod). */
    overhead?: { memory_limit_in_bytes?: number; cpu_quota?: number; cpu_period?: number } | null;
    resources?: { memory_limit_in_bytes?: number; cpu_quota?: number; cpu_period?: number } | null;
  };
}

/** The infra process: sleeps for ever under tini, which reaps what a shared PID namespace leaves it. Run as
 *  `busybox sleep` so its command name is busybox: a container of the pod looking for its own `sleep` (pgrep) must
 *  not find the pod's. */
const INFRA_ARGS = ['/bin/busybox', 'sleep', '2147483647'];
/** A pod annotation naming its utility VM's guest kernel package: the name of the Docker label that does the same. */
export const VM_KERNEL_ANNOTATION = 'io.silo.vm.kernel';
const INFRA_SCRATCH_BYTES = 16 * 1024 * 1024;

export class Sandboxes {
  /** The infra's image (the built-in busybox), found once: looking it up again costs every RunPodSandbox a read. */
  private baseId?: string;

  constructor(private readonly s: Services) {}

  /** Every sandbox: its infra system and CRI metadata. */
  all(): { rec: ComputeSystemRecord; meta: SandboxMeta }[] {
    const out: { rec: ComputeSystemRecord; meta: SandboxMeta }[] = [];
    for (const rec of this.s.compute.list(true)) {
      const meta = metaOf(rec);
      if (meta?.kind === 'sandbox') out.push({ rec, meta });
    }
    return out;
  }

  /** A sandbox by full id or unique prefix; NotFound otherwise. */
  get(id: string): { rec: ComputeSystemRecord; meta: SandboxMeta } {
    if (!id) throw invalid('a pod sandbox id is required');
    const hits = this.all().filter((x) => x.rec.Id === id || x.rec.Id.startsWith(id));
    if (hits.length !== 1) {
      throw hits.length ? invalid(`pod sandbox id ${id} is ambiguous`) : new SiloError('NotFound', 'SILO_NOT_FOUND', `pod sandbox ${id} not found`);
    }
    return hits[0];
  }

  find(id: string) {
    try {
      return this.get(id);
    } catch (e) {
      if (isSiloError(e) && e.class === 'NotFound') return undefined;
      throw e;
    }
  }

  async run(cfg: PodSandboxConfig | undefined, handler: string): Promise<string> {
    if (!cfg?.metadata?.name) throw invalid('pod sandbox config needs metadata with a name');
    const isolation = isolationOf(handler, this.s.compute.isolations());
    const md = cfg.metadata;
    const nso = cfg.linux?.security_context?.namespace_options ?? { network: 'POD', pid: 'POD', ipc: 'POD' };
    const hostNet = nso.network === 'NODE';
    // A vm pod is one utility VM (its own kernel): its infra is the VM's first container and has no host namespaces.
    const vm = isolation === 'vm';
    if (vm) {
      for (const [kind, mode] of Object.entries(nso)) if (mode === 'NODE') throw invalid(`a pod of runtime handler "vm" has its own kernel: it cannot use the host's ${kind === 'pid' ? 'PID' : kind === 'ipc' ? 'IPC' : 'network'} namespace`);
    }
    const meta: SandboxMeta = {
      kind: 'sandbox',
      metadata: { name: md.name, uid: md.uid, namespace: md.namespace, attempt: md.attempt },
      labels: cfg.labels ?? {},
      annotations: cfg.annotations ?? {},
      logDirectory: cfg.log_directory ?? '',
      runtimeHandler: handler,
      hostname: cfg.hostname,
      namespaces: { network: nso.network, pid: nso.pid, ipc: nso.ipc },
      ...(cfg.linux?.cgroup_parent ? { cgroupParent: cgroupParentOf(cfg.linux.cgroup_parent) } : {}),
    };
    const ports = (cfg.port_mappings ?? []).filter((p) => p.host_port > 0).map((p) => {
      if (p.protocol === 'SCTP') throw invalid('port mapping protocol SCTP is not supported: use TCP or UDP');
      return { Protocol: p.protocol === 'UDP' ? ('udp' as const) : ('tcp' as const), InternalPort: p.container_port, ExternalPort: p.host_port, ...(p.host_ip ? { HostIp: p.host_ip } : {}) };
    });
    if (hostNet && ports.length) throw invalid('port mappings need the pod network: a host-network pod uses the host ports directly');
    const dns = cfg.dns_config;
    const hasDns = dns && (dns.servers.length || dns.searches.length || dns.options.length);
    const kernel = cfg.annotations?.[VM_KERNEL_ANNOTATION];
    const cached = this.baseId;
    const spec = (image: string) => ({
      Name: systemName(['POD', md.name, md.namespace, md.uid, String(md.attempt)]),
      Image: image,
      Document: {
        Owner: CRI_OWNER,
        Isolation: isolation,
        // A vm pod's own guest kernel, named as a Docker container names it (label io.silo.vm.kernel); on a process
        // pod the create refuses it in one line. Every container a kubelet makes has mounts (/etc/hosts, the
        // service-account token, the pod's volumes): a vm pod's VM gets a virtiofs share they go through.
        ...(kernel !== undefined || vm ? { VirtualMachine: { ...(kernel !== undefined ? { KernelPackage: kernel } : {}), ...(vm ? { HostedMounts: true } : {}) } } : {}),
        // Process isolation: tini; in a VM: the guest agent's tiny init. Both reap what a shared PID namespace leaves.
        Init: true,
        Labels: metaLabels(meta),
        Process: { Entrypoint: [], CommandArgs: INFRA_ARGS },
        Container: {
          ...(cfg.hostname && !hostNet ? { GuestOs: { HostName: cfg.hostname } } : {}),
          // The infra writes nothing: its scratch is a small tmpfs, not an ext4 image on a loop device (no format,
          // attach or journal on the pod's way up or down). A VM's infra has the VM's scratch disk and log file.
          ...(isolation === 'process' ? { Storage: { ScratchInMemory: true, ScratchSizeInBytes: INFRA_SCRATCH_BYTES } } : {}),
          ...(vm ? vmSize(cfg.linux) : { Logging: { Driver: 'none' } }),
          // The pod's kernel parameters live in the namespaces its containers join.
          ...(Object.keys(cfg.linux?.sysctls ?? {}).length ? { Sysctls: cfg.linux!.sysctls } : {}),
          // The kubelet's pod cgroup (cgroupfs driver), the parent of every container's of the pod.
          ...(cfg.linux?.cgroup_parent ? { CgroupParent: cgroupParentOf(cfg.linux.cgroup_parent) } : {}),
          ...(hostNet
            ? {}
            : {
                Networking: {
                  Network: POD_NETWORK,
                  ...(ports.length ? { PortMappings: ports } : {}),
                  ...(hasDns ? { Dns: { ...(dns.servers.length ? { Servers: dns.servers } : {}), ...(dns.searches.length ? { Search: dns.searches } : {}), ...(dns.options.length ? { Options: dns.options } : {}) } } : {}),
                },
              }),
          Security: infraSecurity(cfg.linux?.security_context),
          ...(vm
            ? {}
            : {
                Namespaces: {
                  ...(hostNet ? { Network: { Mode: 'host' }, Uts: { Mode: 'host' } } : {}),
                  ...(nso.pid === 'NODE' ? { Pid: { Mode: 'host' } } : {}),
                  ...(nso.ipc === 'NODE' ? { Ipc: { Mode: 'host' } } : {}),
                },
              }),
        },
      },
    }) as unknown as CreateSystemRequest;
    const rec = await this.s.compute.create(spec(cached ?? (await this.base()))).catch(async (e) => {
      // The built-in image was removed since (silo rmi): made again, once.
      if (!cached || !(isSiloError(e) && e.class === 'NotFound')) throw e;
      this.baseId = undefined;
      return this.s.compute.create(spec(await this.base()));
    });
    try {
      await this.s.compute.start(rec.Id);
    } catch (e) {
      await this.s.compute.remove(rec.Id, { force: true }).catch(() => {});
      throw e;
    }
    return rec.Id;
  }

  private async base(): Promise<string> {
    return (this.baseId = (await this.s.storage.ensureBaseImage()).id);
  }

  /** Stop every container of the pod and its infra; a sandbox that is not there is no error (stops are idempotent). */
  async stop(id: string, containers: ComputeSystemRecord[]): Promise<void> {
    const sb = this.find(id);
    if (!sb) return;
    await Promise.all(containers.map((c) => ignoreGone(this.s.compute.terminate(c.Id))));
    await ignoreGone(this.s.compute.terminate(sb.rec.Id));
  }

  async remove(id: string, containers: ComputeSystemRecord[]): Promise<void> {
    const sb = this.find(id);
    if (!sb) return;
    await Promise.all(containers.map((c) => ignoreGone(this.s.compute.remove(c.Id, { force: true }))));
    await ignoreGone(this.s.compute.remove(sb.rec.Id, { force: true }));
  }

  ready(rec: ComputeSystemRecord): boolean {
    return rec.State === 'Running' || rec.State === 'Paused';
  }

  /** The network namespace file of the sandbox; undefined for a host-network pod. */
  netns(rec: ComputeSystemRecord): string | undefined {
    const ns = rec.Document.Container.Networking?.Namespace;
    return ns ? this.s.network.getNamespace(ns).Path : undefined;
  }

  ip(rec: ComputeSystemRecord): string {
    const ep = rec.Document.Container.Networking?.Endpoints?.[0];
    if (!ep) return '';
    try {
      return this.s.compute.networking.endpointOf(ep).IpAddress;
    } catch {
      return '';
    }
  }

  summary(rec: ComputeSystemRecord, meta: SandboxMeta) {
    return {
      id: rec.Id,
      metadata: meta.metadata,
      state: this.ready(rec) ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY',
      created_at: nanos(rec.Created),
      labels: meta.labels,
      annotations: meta.annotations,
      runtime_handler: meta.runtimeHandler,
    };
  }

  status(rec: ComputeSystemRecord, meta: SandboxMeta) {
    return {
      ...this.summary(rec, meta),
      network: { ip: meta.namespaces.network === 'NODE' ? '' : this.ip(rec), additional_ips: [] },
      linux: { namespaces: { options: { network: meta.namespaces.network, pid: meta.namespaces.pid, ipc: meta.namespaces.ipc, target_id: '' } } },
    };
  }

  list(filter: { id?: string; state?: { state: string }; label_selector?: Record<string, string> } | undefined) {
    return this.all()
      .filter(({ rec, meta }) => {
        if (filter?.id && !rec.Id.startsWith(filter.id)) return false;
        if (filter?.state && filter.state.state !== (this.ready(rec) ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY')) return false;
        return selects(filter?.label_selector, meta.labels);
      })
      .map(({ rec, meta }) => this.summary(rec, meta));
  }
}

/** The pod-level security context applied to the infra process, as containerd applies it to the pause container:
 *  user and groups, read-only root, seccomp; privileged pods are privileged there too. */
export function infraSecurity(sc: NonNullable<PodSandboxConfig['linux']>['security_context']): Record<string, unknown> {
  if (!sc) return {};
  const out: Record<string, unknown> = {};
  if (sc.privileged) out.Privileged = true;
  if (sc.readonly_rootfs) out.ReadOnlyRoot = true;
  if (sc.run_as_user) out.RunAsUser = sc.run_as_user.value;
  if (sc.run_as_group) {
    // Without a user the image's is meant: the built-in busybox image runs as root.
    if (!sc.run_as_user) out.RunAsUser = 0;
    out.RunAsGroup = sc.run_as_group.value;
  }
  if (sc.supplemental_groups?.length) out.SupplementalGroups = sc.supplemental_groups;
  if (!sc.privileged) {
    const t = sc.seccomp?.profile_type;
    const path = sc.seccomp_profile_path;
    // As asked; with no profile named the infra keeps Silo's default allowlist (it only sleeps).
    if (t === 'RuntimeDefault' || (!t && (path === 'runtime/default' || path === 'docker/default'))) out.Seccomp = { Profile: 'default' };
    else if (t === 'Unconfined' || (!t && path === 'unconfined')) out.Seccomp = { Profile: 'unconfined' };
    else if (t === 'Localhost' || path?.startsWith('localhost/')) {
      const ref = t === 'Localhost' ? sc.seccomp!.localhost_ref : path.slice('localhost'.length);
      if (!ref.startsWith('/')) throw invalid(`seccomp localhost profile ${JSON.stringify(ref)} must be an absolute path`);
      out.Seccomp = { Profile: 'localhost', LocalhostPath: ref };
    }
  }
  return out;
}

/** A vm pod's utility VM sized for the pod's total and the runtime's overhead when the kubelet sends them (else the
 *  VM's default size): memory in MiB and whole vCPUs, as the infra's limits, which size its VM. */
export function vmSize(l: PodSandboxConfig['linux']): Record<string, unknown> {
  const sum = (k: 'memory_limit_in_bytes', a = l?.resources, b = l?.overhead) => (Number(a?.[k]) || 0) + (Number(b?.[k]) || 0);
  const cpus = [l?.resources, l?.overhead].reduce((n, r) => n + (r && Number(r.cpu_quota) > 0 ? Number(r.cpu_quota) / (Number(r.cpu_period) || 100000) : 0), 0);
  const mem = sum('memory_limit_in_bytes');
  return {
    ...(mem > 0 ? { Memory: { SizeInMB: Math.ceil(mem / (1024 * 1024)) } } : {}),
    ...(cpus > 0 ? { Processor: { Count: Math.min(cpuCount(), Math.ceil(cpus)) } } : {}),
  };
}

/** The CRI's cgroup parent as a cgroupfs path; a systemd slice name means the kubelet runs the other driver. */
export function cgroupParentOf(p: string): string {
  if (p.endsWith('.slice')) throw invalid(`cgroup parent ${JSON.stringify(p)} is a systemd slice: Silo's cgroup driver is cgroupfs (set the kubelet's cgroupDriver: cgroupfs)`);
  return p.startsWith('/') ? p : `/${p}`;
}

/** A system removed meanwhile (by another request) is what was wanted. */
export async function ignoreGone(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!(isSiloError(e) && e.class === 'NotFound')) throw e;
  }
}
