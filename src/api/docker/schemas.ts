// Docker Engine API request bodies, written once as TypeBox: every body is checked against its schema before a
// handler reads it (a wrong JSON type is a 400, as moby's decoder answers), and the handlers' types come from the
// same definitions. Docker clients send null and zero values for what the user did not set, so fields are
// nullable; properties Silo does not know are let through here and judged by the translation (refused if set).

import { Type as T, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { ValueError } from '@sinclair/typebox/errors';
import { dockerInvalid } from './errors.js';

const N = <S extends TSchema>(s: S) => T.Optional(T.Union([s, T.Null()]));
const open = <S extends Record<string, TSchema>>(props: S) => T.Object(props, { additionalProperties: true });
const Str = T.String();
const Bool = T.Boolean();
const Int = (o: { minimum?: number; maximum?: number } = {}) => T.Integer(o);
const Strs = T.Array(Str);
const StrMap = T.Record(T.String(), T.String());
/** `Cmd`/`Entrypoint`: an array of strings, or (older clients) one string. */
const Command = T.Union([Strs, Str]);

export const EndpointSettings = open({
  IPAMConfig: N(open({ IPv4Address: N(Str), IPv6Address: N(Str), LinkLocalIPs: N(Strs) })),
  Links: N(Strs),
  Aliases: N(Strs),
  MacAddress: N(Str),
  DriverOpts: N(StrMap),
  NetworkID: N(Str),
});

const Mount = open({
  Type: Str,
  Source: N(Str),
  Target: N(Str),
  ReadOnly: N(Bool),
  Consistency: N(Str),
  BindOptions: N(open({ Propagation: N(Str), NonRecursive: N(Bool) })),
  VolumeOptions: N(open({ NoCopy: N(Bool), Labels: N(StrMap), Subpath: N(Str) })),
  TmpfsOptions: N(open({ SizeBytes: N(Int({ minimum: 0 })), Mode: N(Int({ minimum: 0, maximum: 0o7777 })) })),
});

const DeviceRate = open({ Path: Str, Rate: Int({ minimum: 0 }) });

/** HostConfig's resource fields; also the body of `POST /containers/{id}/update` (with RestartPolicy). */
const resources = {
  CpuShares: N(Int({ minimum: 0 })),
  Memory: N(Int({ minimum: 0 })),
  NanoCpus: N(Int({ minimum: 0 })),
  CgroupParent: N(Str),
  BlkioWeight: N(Int({ minimum: 0, maximum: 1000 })),
  BlkioWeightDevice: N(T.Array(T.Unknown())),
  BlkioDeviceReadBps: N(T.Array(DeviceRate)),
  BlkioDeviceWriteBps: N(T.Array(DeviceRate)),
  BlkioDeviceReadIOps: N(T.Array(DeviceRate)),
  BlkioDeviceWriteIOps: N(T.Array(DeviceRate)),
  CpuPeriod: N(Int({ minimum: 0 })),
  CpuQuota: N(Int({ minimum: -1 })),
  CpuRealtimePeriod: N(Int({ minimum: 0 })),
  CpuRealtimeRuntime: N(Int({ minimum: 0 })),
  CpusetCpus: N(Str),
  CpusetMems: N(Str),
  Devices: N(T.Array(open({ PathOnHost: Str, PathInContainer: N(Str), CgroupPermissions: N(Str) }))),
  DeviceCgroupRules: N(Strs),
  DeviceRequests: N(T.Array(T.Unknown())),
  KernelMemory: N(Int()),
  KernelMemoryTCP: N(Int()),
  MemoryReservation: N(Int({ minimum: 0 })),
  MemorySwap: N(Int({ minimum: -1 })),
  MemorySwappiness: N(Int({ minimum: -1, maximum: 100 })),
  OomKillDisable: N(Bool),
  PidsLimit: N(Int()),
  Ulimits: N(T.Array(open({ Name: Str, Soft: Int(), Hard: Int() }))),
  CpuCount: N(Int({ minimum: 0 })),
  CpuPercent: N(Int({ minimum: 0 })),
  IOMaximumIOps: N(Int({ minimum: 0 })),
  IOMaximumBandwidth: N(Int({ minimum: 0 })),
};

const RestartPolicy = open({ Name: N(Str), MaximumRetryCount: N(Int({ minimum: 0 })) });

export const HostConfig = open({
  ...resources,
  Binds: N(Strs),
  ContainerIDFile: N(Str),
  LogConfig: N(open({ Type: N(Str), Config: N(StrMap) })),
  NetworkMode: N(Str),
  PortBindings: N(T.Record(T.String(), N(T.Array(open({ HostIp: N(Str), HostPort: N(Str) }))))),
  RestartPolicy: N(RestartPolicy),
  AutoRemove: N(Bool),
  VolumeDriver: N(Str),
  VolumesFrom: N(Strs),
  Mounts: N(T.Array(Mount)),
  ConsoleSize: N(T.Array(Int({ minimum: 0 }), { maxItems: 2 })),
  Annotations: N(StrMap),
  CapAdd: N(Strs),
  CapDrop: N(Strs),
  CgroupnsMode: N(Str),
  Dns: N(Strs),
  DnsOptions: N(Strs),
  DnsSearch: N(Strs),
  ExtraHosts: N(Strs),
  GroupAdd: N(Strs),
  IpcMode: N(Str),
  Cgroup: N(Str),
  Links: N(Strs),
  OomScoreAdj: N(Int({ minimum: -1000, maximum: 1000 })),
  PidMode: N(Str),
  Privileged: N(Bool),
  PublishAllPorts: N(Bool),
  ReadonlyRootfs: N(Bool),
  SecurityOpt: N(Strs),
  StorageOpt: N(StrMap),
  Tmpfs: N(StrMap),
  UTSMode: N(Str),
  UsernsMode: N(Str),
  ShmSize: N(Int({ minimum: 0 })),
  Sysctls: N(StrMap),
  Runtime: N(Str),
  Isolation: N(Str),
  MaskedPaths: N(Strs),
  ReadonlyPaths: N(Strs),
  Init: N(Bool),
});

export const ContainerConfig = open({
  Hostname: N(Str),
  Domainname: N(Str),
  User: N(Str),
  AttachStdin: N(Bool),
  AttachStdout: N(Bool),
  AttachStderr: N(Bool),
  ExposedPorts: N(T.Record(T.String(), T.Unknown())),
  Tty: N(Bool),
  OpenStdin: N(Bool),
  StdinOnce: N(Bool),
  Env: N(Strs),
  Cmd: N(Command),
  Healthcheck: N(open({ Test: N(Strs), Interval: N(Int({ minimum: 0 })), Timeout: N(Int({ minimum: 0 })), Retries: N(Int({ minimum: 0 })), StartPeriod: N(Int({ minimum: 0 })), StartInterval: N(Int({ minimum: 0 })) })),
  ArgsEscaped: N(Bool),
  Image: N(T.String({ maxLength: 512 })),
  Volumes: N(T.Record(T.String(), T.Unknown())),
  WorkingDir: N(Str),
  Entrypoint: N(Command),
  NetworkDisabled: N(Bool),
  MacAddress: N(Str),
  OnBuild: N(Strs),
  Labels: N(StrMap),
  StopSignal: N(Str),
  StopTimeout: N(Int()),
  Shell: N(Strs),
});

/** `POST /containers/create`: Config with HostConfig and NetworkingConfig embedded. */
export const ContainerCreate = T.Intersect([
  ContainerConfig,
  open({ HostConfig: N(HostConfig), NetworkingConfig: N(open({ EndpointsConfig: N(T.Record(T.String(), N(EndpointSettings))) })) }),
]);

export const ContainerUpdate = open({ ...resources, RestartPolicy: N(RestartPolicy) });

export const ExecCreate = open({
  AttachStdin: N(Bool), AttachStdout: N(Bool), AttachStderr: N(Bool), ConsoleSize: N(T.Array(Int({ minimum: 0 }), { maxItems: 2 })),
  DetachKeys: N(Str), Tty: N(Bool), Env: N(Strs), Cmd: N(Strs), Privileged: N(Bool), User: N(Str), WorkingDir: N(Str),
});
export const ExecStart = open({ Detach: N(Bool), Tty: N(Bool), ConsoleSize: N(T.Array(Int({ minimum: 0 }), { maxItems: 2 })) });

export const NetworkCreate = open({
  Name: N(Str), Driver: N(Str), Scope: N(Str), Internal: N(Bool), Attachable: N(Bool), Ingress: N(Bool), EnableIPv6: N(Bool), EnableIPv4: N(Bool),
  IPAM: N(open({ Driver: N(Str), Options: N(StrMap), Config: N(T.Array(open({ Subnet: N(Str), IPRange: N(Str), Gateway: N(Str), AuxiliaryAddresses: N(StrMap) }))) })),
  Options: N(StrMap), Labels: N(StrMap), ConfigOnly: N(Bool), ConfigFrom: N(open({ Network: N(Str) })), CheckDuplicate: N(Bool),
});
export const NetworkConnect = open({ Container: N(Str), EndpointConfig: N(EndpointSettings) });
export const NetworkDisconnect = open({ Container: N(Str), Force: N(Bool) });
export const VolumeCreate = open({ Name: N(Str), Driver: N(Str), DriverOpts: N(StrMap), Labels: N(StrMap) });
export const AuthConfig = open({ username: N(Str), password: N(Str), auth: N(Str), email: N(Str), serveraddress: N(Str), identitytoken: N(Str), registrytoken: N(Str) });
export const CommitConfig = T.Union([ContainerConfig, T.Null()]);

export type ContainerCreate = Static<typeof ContainerCreate>;
export type HostConfig = Static<typeof HostConfig>;
export type EndpointSettings = Static<typeof EndpointSettings>;
export type ContainerUpdate = Static<typeof ContainerUpdate>;
export type ExecCreate = Static<typeof ExecCreate>;
export type NetworkCreate = Static<typeof NetworkCreate>;
export type NetworkConnect = Static<typeof NetworkConnect>;
export type VolumeCreate = Static<typeof VolumeCreate>;

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

/** The body checked against its schema: a JSON type docker would not decode is a one-line 400 naming the field. */
export function parseBody<S extends TSchema>(schema: S, body: unknown): Static<S> {
  const b = body ?? {};
  let c = compiled.get(schema);
  if (!c) compiled.set(schema, (c = TypeCompiler.Compile(schema)));
  if (c.Check(b)) return b as Static<S>;
  // A union's own error (a nullable field) says little: the deepest error inside it names the field.
  const deepest = (errs: ValueError[]): ValueError =>
    errs.flatMap((e) => (e.errors?.length ? [e, deepest(e.errors.flatMap((it) => [...it]))] : [e])).sort((x, y) => y.path.length - x.path.length)[0];
  const e = deepest([...c.Errors(b)]);
  const field = e.path.replace(/^\//, '').replace(/\//g, '.') || 'body';
  throw dockerInvalid(`invalid JSON for ${field}: ${e.message.toLowerCase()}`);
}
