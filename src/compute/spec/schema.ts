// The one create specification of a compute system, written once as TypeBox: the JSON Schema the native API checks
// bodies against and the TypeScript types every front door builds (native, Docker, CLI, CRI) come from here. Its
// shape is an HCS compute system document (../shared/reference/hcs-hns.md §1) plus what a Kubernetes pod needs:
// joining another system's namespaces, a security context and a caller-chosen log path. Checks that need more than
// the schema are in validate.ts, the one place a spec is judged.

import { Type as T, type Static, type TSchema } from '@sinclair/typebox';

const strict = <S extends Record<string, TSchema>>(props: S) => T.Object(props, { additionalProperties: false });
const opt = T.Optional;
export const StrMap = T.Record(T.String(), T.String());
const AbsPath = T.String({ minLength: 1, maxLength: 4096, pattern: '^/' });

export const ProcessParameters = strict({
  CommandArgs: opt(T.Array(T.String())),
  Entrypoint: opt(T.Array(T.String())),
  WorkingDirectory: opt(T.String()),
  Environment: opt(StrMap),
  /** Names taken out of the image's environment (docker's `-e NAME` with no value: unset). */
  UnsetEnvironment: opt(T.Array(T.String({ minLength: 1, pattern: '^[^=]+$' }))),
  User: opt(T.String()),
  EmulateConsole: opt(T.Boolean()),
  CreateStdInPipe: opt(T.Boolean()),
  /** docker's StdinOnce: the first attached client's end of stdin closes the process' stdin (the default); false
   *  keeps it open across attachments (`docker run -di`, compose's stdin_open), so a detach does not end it. */
  StdinOnce: opt(T.Boolean()),
  ConsoleSize: opt(T.Tuple([T.Integer({ minimum: 0 }), T.Integer({ minimum: 0 })])),
});

export const MappedDirectory = strict({
  HostPath: T.String({ minLength: 1 }),
  ContainerPath: T.String({ minLength: 1 }),
  ReadOnly: opt(T.Boolean()),
  /** A relative path inside HostPath to mount instead (docker's volume-subpath): resolved at each start inside
   *  HostPath, never above it, on an fd that is what gets mounted, so a symlink swapped in after any check cannot lead
   *  the mount out of it. */
  Subpath: opt(T.String({ minLength: 1 })),
  /** Fill HostPath, when it is empty at create, with what the image holds at ContainerPath (docker's copy-up of a
   *  named or anonymous volume; src/compute/populate.ts). Not with a Subpath. */
  PopulateFromImage: opt(T.Boolean()),
  /** Mount propagation (default rprivate); shared and slave ones make the container's root propagate likewise. */
  Propagation: opt(T.Union([T.Literal('private'), T.Literal('rprivate'), T.Literal('slave'), T.Literal('rslave'), T.Literal('shared'), T.Literal('rshared')])),
});

const Port = T.Integer({ minimum: 1, maximum: 65535 });
export const Protocol = T.Union([T.Literal('tcp'), T.Literal('udp')]);
// ExternalPort 0: the network service picks a free host port (as HNS does); the record then holds the one it picked.
export const PortMapping = strict({ Protocol, InternalPort: Port, ExternalPort: T.Integer({ minimum: 0, maximum: 65535 }), HostIp: opt(T.Union([T.String({ format: 'ipv4' }), T.String({ format: 'ipv6' })])) }); // IPv6: dual-stack networks

export const Networking = strict({
  /** "none" = an empty namespace (loopback only); a network name or id; absent = the default nat network. */
  Network: opt(T.String({ minLength: 1 })),
  IpAddress: opt(T.String({ format: 'ipv4' })),
  Aliases: opt(T.Array(T.String({ minLength: 1, maxLength: 253 }))),
  PortMappings: opt(T.Array(PortMapping)),
  /** The endpoint's MAC address (default: derived from its IP address). */
  MacAddress: opt(T.String({ pattern: '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$' })),
  /** resolv.conf: servers instead of the network's DNS server, search domains, options (default ndots:0). */
  Dns: opt(strict({ Servers: opt(T.Array(T.String({ format: 'ipv4' }))), Search: opt(T.Array(T.String({ minLength: 1 }))), Options: opt(T.Array(T.String({ minLength: 1, pattern: '^\\S+$' }))) })),
  /** More lines of /etc/hosts. */
  ExtraHosts: opt(T.Array(strict({ Name: T.String({ minLength: 1, pattern: '^\\S+$' }), IpAddress: T.String({ minLength: 1 }) }))),
  /** Filled in by the compute service: the HCN namespace and endpoints the system joined. Never given by a caller. */
  Namespace: opt(T.String()),
  Endpoints: opt(T.Array(T.String())),
});

/** Whose namespace a system's process runs in: its own (private), the host's, another system's, or one at a path
 *  (a network namespace a pod sandbox made). Target is the system id or name for `system`, the path for `path`. */
export const NamespaceRef = strict({
  Mode: T.Union([T.Literal('private'), T.Literal('host'), T.Literal('system'), T.Literal('path')]),
  Target: opt(T.String({ minLength: 1, maxLength: 4096 })),
});

export const Namespaces = strict({ Network: opt(NamespaceRef), Pid: opt(NamespaceRef), Ipc: opt(NamespaceRef), Uts: opt(NamespaceRef) });

export const Security = strict({
  /** Every capability the daemon holds, every host device, no seccomp filter, no masked or read-only /proc paths. */
  Privileged: opt(T.Boolean()),
  /** Capability names (CAP_ prefix optional) or ALL, on top of (or taken from) the default set. */
  CapAdd: opt(T.Array(T.String({ minLength: 1 }))),
  CapDrop: opt(T.Array(T.String({ minLength: 1 }))),
  /** default = Silo's allowlist; localhost = an OCI seccomp profile (JSON) in a host file, as the CRI's localhost/. */
  Seccomp: opt(strict({ Profile: T.Union([T.Literal('default'), T.Literal('unconfined'), T.Literal('localhost')]), LocalhostPath: opt(AbsPath) })),
  ReadOnlyRoot: opt(T.Boolean()),
  /** Default true (Silo's hardening); false lets setuid binaries gain privileges. */
  NoNewPrivileges: opt(T.Boolean()),
  /** Numeric user and group; they win over Process.User. */
  RunAsUser: opt(T.Integer({ minimum: 0, maximum: 4294967294 })),
  RunAsGroup: opt(T.Integer({ minimum: 0, maximum: 4294967294 })),
  /** More groups for the process: gids, or names looked up in the container's /etc/group. */
  SupplementalGroups: opt(T.Array(T.Union([T.Integer({ minimum: 0, maximum: 4294967294 }), T.String({ minLength: 1 })]))),
  /** Replace the default masked and read-only /proc and /sys paths. */
  MaskedPaths: opt(T.Array(AbsPath)),
  ReadonlyPaths: opt(T.Array(AbsPath)),
});

/** Where the init process' output is kept: `file` (the default) in CRI log format (`<RFC3339Nano> stdout F <line>`,
 *  P for a partial line) at Path if the caller chose one, else in the daemon's state; `none` keeps nothing.
 *  A file rotates once it reaches MaxSizeInBytes, keeping MaxFiles files in all (docker's max-size and max-file);
 *  -1 is no limit. Unset: the daemon's defaults for its own file, none for a caller's path (its caller rotates it). */
export const Logging = strict({
  Driver: opt(T.Union([T.Literal('file'), T.Literal('none')])),
  Path: opt(AbsPath),
  MaxSizeInBytes: opt(T.Integer({ minimum: -1 })),
  MaxFiles: opt(T.Integer({ minimum: 1, maximum: 100 })),
});

export const Tmpfs = strict({
  ContainerPath: AbsPath,
  /** Mount options: ro/rw, exec/noexec, suid/nosuid, dev/nodev, size=<bytes>, mode=<octal>, uid=, gid=. */
  Options: opt(T.Array(T.String({ minLength: 1 }))),
});

export const Ulimit = strict({ Name: T.String({ minLength: 1 }), Soft: T.Integer({ minimum: -1 }), Hard: T.Integer({ minimum: -1 }) });
/** A rate on one block device of the host, named by its node (docker's `--device-read-bps /dev/sda:1mb`). */
export const DeviceRate = strict({ Path: AbsPath, Rate: T.Integer({ minimum: 0 }) });

export const Device = strict({ PathOnHost: AbsPath, PathInContainer: opt(AbsPath), Permissions: opt(T.String({ pattern: '^[rwm]{1,3}$' })) });

export const Container = strict({
  GuestOs: opt(strict({ HostName: T.String({ maxLength: 63, pattern: '^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$' }) })),
  /** ScratchInMemory: the scratch is a tmpfs of that size, not an ext4 image: nothing of it outlives a stop, and
   *  nothing is formatted, attached to a loop device or journalled (a pod's infra, which writes nothing). */
  Storage: opt(strict({ ScratchSizeInBytes: opt(T.Integer({ minimum: 1 })), ScratchInMemory: opt(T.Boolean()) })),
  MappedDirectories: opt(T.Array(MappedDirectory)),
  Tmpfs: opt(T.Array(Tmpfs)),
  Devices: opt(T.Array(Device)),
  /** ReservationInBytes: a soft limit the kernel reclaims down to under memory pressure (docker's --memory-reservation). */
  Memory: opt(strict({ SizeInMB: opt(T.Number({ exclusiveMinimum: 0 })), Swappiness: opt(T.Integer({ minimum: 0, maximum: 100 })), ReservationInBytes: opt(T.Integer({ minimum: 1 })) })),
  Processor: opt(strict({ Count: opt(T.Number()), Maximum: opt(T.Integer()), Weight: opt(T.Integer()), /** cgroup cpu.shares as the kubelet computes them; with Count or Maximum, unlike Weight. */ Shares: opt(T.Integer({ minimum: 2, maximum: 262144 })), CpusetCpus: opt(T.String({ pattern: '^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$' })) })),
  Pids: opt(strict({ Limit: T.Integer({ minimum: 1 }) })),
  /** Block I/O throttled per host device (the blkio controller's throttle files): bytes or operations a second. */
  BlockIO: opt(strict({ ReadBps: opt(T.Array(DeviceRate)), WriteBps: opt(T.Array(DeviceRate)), ReadIops: opt(T.Array(DeviceRate)), WriteIops: opt(T.Array(DeviceRate)) })),
  /** /dev/shm's size (default 64 MiB). */
  ShmSizeInBytes: opt(T.Integer({ minimum: 1 })),
  Ulimits: opt(T.Array(Ulimit)),
  /** Namespaced kernel parameters (net.*, IPC's kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, UTS names). */
  Sysctls: opt(StrMap),
  /** The OOM killer's preference for this system's processes, -1000..1000; below the daemon's own it is raised to it
   *  (lowering needs CAP_SYS_RESOURCE, which root lacks on some hosts). */
  OomScoreAdj: opt(T.Integer({ minimum: -1000, maximum: 1000 })),
  /** The cgroup (cgroupfs path) to put the system's own under, instead of the daemon's parent: the kubelet's pod cgroup. */
  CgroupParent: opt(T.String({ minLength: 2, maxLength: 1024, pattern: '^/[A-Za-z0-9_.@:/-]+$' })),
  Networking: opt(Networking),
  Namespaces: opt(Namespaces),
  Security: opt(Security),
  Logging: opt(Logging),
});

/** docker's HEALTHCHECK: Test is ["CMD", args…], ["CMD-SHELL", line] or ["NONE"]; times in milliseconds. */
export const HealthCheck = strict({
  Test: T.Array(T.String(), { minItems: 1 }),
  IntervalMs: opt(T.Integer({ minimum: 1 })),
  TimeoutMs: opt(T.Integer({ minimum: 1 })),
  StartPeriodMs: opt(T.Integer({ minimum: 0 })),
  StartIntervalMs: opt(T.Integer({ minimum: 1 })),
  Retries: opt(T.Integer({ minimum: 0 })),
});

export const RestartPolicy = strict({
  Name: T.Union([T.Literal('no'), T.Literal('always'), T.Literal('unless-stopped'), T.Literal('on-failure')]),
  MaximumRetryCount: opt(T.Integer({ minimum: 0 })),
});

/** The body of `POST /v1/systems`, and what every other front door maps its own request onto. */
export const CreateSpec = strict({
  Name: opt(T.String({ minLength: 1, maxLength: 128 })),
  Image: T.String({ minLength: 1, maxLength: 512 }),
  Document: opt(
    strict({
      Owner: opt(T.String()),
      Isolation: opt(T.String()),
      Container: opt(Container),
      Process: opt(ProcessParameters),
      StopSignal: opt(T.String()),
      StopTimeoutSeconds: opt(T.Integer({ minimum: 0 })),
      AutoRemove: opt(T.Boolean()),
      RestartPolicy: opt(RestartPolicy),
      HealthCheck: opt(HealthCheck),
      Init: opt(T.Boolean()),
      Labels: opt(StrMap),
      /** vm: run inside this system's utility VM instead of one of its own (HCS's HostingSystemId; a VM pod's sandbox). */
      HostingSystemId: opt(T.String({ minLength: 1 })),
      /** vm: the utility VM itself (HCS's VirtualMachine section); KernelPackage: a Debian kernel package it boots
       *  instead of the default guest kernel (docs/vm.md "Guest kernels"). */
      /** HostedMounts: the systems it hosts (HostingSystemId) may have bind mounts, so the VM has a virtiofs share
       *  and shared guest RAM (a CRI pod's VM; docs/vm.md "Pods"). */
      VirtualMachine: opt(strict({ KernelPackage: opt(T.String({ minLength: 1, maxLength: 128 })), HostedMounts: opt(T.Boolean()) })),
    }),
  ),
});

export type CreateSpec = Static<typeof CreateSpec>;
export type SpecContainer = Static<typeof Container>;
export type NamespaceRef = Static<typeof NamespaceRef>;
export type Namespaces = Static<typeof Namespaces>;
export type Security = Static<typeof Security>;
export type Logging = Static<typeof Logging>;
export type Tmpfs = Static<typeof Tmpfs>;
export type Ulimit = Static<typeof Ulimit>;
export type Device = Static<typeof Device>;
export type Networking = Static<typeof Networking>;
export type MappedDirectory = Static<typeof MappedDirectory>;
export type DeviceRate = Static<typeof DeviceRate>;
export type ProcessParameters = Static<typeof ProcessParameters>;
export type RestartPolicy = Static<typeof RestartPolicy>;
export type HealthCheck = Static<typeof HealthCheck>;
