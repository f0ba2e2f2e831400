// The native API's wire objects, each defined once as TypeBox: request bodies are the schemas the server validates
// (schemas.ts, the create specification from the compute service), answers are defined here. Clients — the `silo`
// CLI first — import these types and nothing of a service; wire-check.ts fails the build if a service's record
// stops matching the wire object the API sends for it.

import { Type as T, type Static, type TSchema } from '@sinclair/typebox';
import { Container as SpecContainer, ProcessParameters, RestartPolicy } from '../../compute/spec/schema.js';
import type * as S from './schemas.js';

const opt = T.Optional;
const Str = T.String();
const Num = T.Number();
const Strs = T.Array(Str);
const StrMap = T.Record(T.String(), T.String());
const obj = <P extends Record<string, TSchema>>(p: P) => T.Object(p);

// ---- requests (validated by the server against schemas.ts) ----------------------------------------------------
export type CreateSystemBody = Static<typeof S.CreateSystem>;
export type ExecBody = Static<typeof S.Exec>;
export type CreateNetworkBody = Static<typeof S.CreateNetwork>;
export type CreateLoadBalancerBody = Static<typeof S.CreateLoadBalancer>;
export type ConnectBody = Static<typeof S.Connect>;
export type ModifyBody = Static<typeof S.Modify>;
export type CommitBody = Static<typeof S.Commit>;
export type NetworkType = NonNullable<CreateNetworkBody['Type']>;
export type Protocol = CreateLoadBalancerBody['PortMappings'][number]['Protocol'];
export type { Networking, MappedDirectory, ProcessParameters as SpecProcess } from '../../compute/spec/schema.js';

// ---- answers ---------------------------------------------------------------------------------------------------
export const SystemState = T.Union([T.Literal('Created'), T.Literal('Running'), T.Literal('Paused'), T.Literal('Stopped')]);

export const SystemDocument = obj({
  Owner: Str,
  SchemaVersion: obj({ Major: T.Literal(2), Minor: T.Literal(1) }),
  Isolation: T.Union([T.Literal('process'), T.Literal('vm')]),
  Container: T.Intersect([
    T.Omit(SpecContainer, ['GuestOs', 'Storage']),
    obj({
      GuestOs: obj({ HostName: Str }),
      Storage: obj({ Image: Str, ImageId: opt(Str), Layers: opt(T.Array(obj({ Id: Str, Path: Str }))), ScratchSizeInBytes: opt(Num) }),
    }),
  ]),
  Process: T.Partial(ProcessParameters),
  StopSignal: opt(Str),
  StopTimeoutSeconds: opt(Num),
  AutoRemove: opt(T.Boolean()),
  Init: opt(T.Boolean()),
  RestartPolicy: opt(RestartPolicy),
  Labels: opt(StrMap),
  VirtualMachine: opt(obj({ KernelPackage: opt(Str), HostedMounts: opt(T.Boolean()) })),
});

/** `GET /v1/systems/{id}` and the items of `GET /v1/systems`. */
export const System = obj({
  Id: Str,
  Name: Str,
  Created: Str,
  State: SystemState,
  Document: SystemDocument,
  Init: obj({ Args: Strs, Env: Strs, Cwd: Str, User: Str, Tty: T.Boolean(), Stdin: T.Boolean() }),
  ImageId: Str,
  ImageName: Str,
  Pid: opt(Num),
  StartedAt: opt(Str),
  FinishedAt: opt(Str),
  ExitCode: opt(Num),
  OOMKilled: opt(T.Boolean()),
  Error: opt(Str),
  RestartCount: Num,
  StoppedByUser: opt(T.Boolean()),
});

export const Exec = obj({
  Id: Str,
  SystemId: Str,
  Process: T.Intersect([ProcessParameters, obj({ CommandArgs: Strs })]),
  Running: T.Boolean(),
  ExitCode: opt(Num),
  Pid: opt(Num),
});

export const Statistics = obj({
  timestamp: Str,
  cpu: obj({ totalNs: Num, userNs: Num, kernelNs: Num, throttledPeriods: Num, throttledNs: Num }),
  memory: obj({ usageBytes: Num, peakBytes: Num, limitBytes: Num, failCount: Num }),
  pids: obj({ current: Num, limit: Num }),
  io: obj({ readBytes: Num, writeBytes: Num }),
  /** Per interface in the container (eth0…): its endpoint's counters, as the network service keeps them. */
  network: opt(T.Record(T.String(), obj({
    BytesReceived: Num, BytesSent: Num, PacketsReceived: Num, PacketsSent: Num,
    ErrorsIncoming: Num, ErrorsOutgoing: Num, DroppedPacketsIncoming: Num, DroppedPacketsOutgoing: Num,
  }))),
});
/** `GET /v1/system/df`: what images, containers and volumes take on disk (src/api/disk-usage.ts). An image's Size
 *  here is its unpacked layers and its blobs (the list's is the layers only); SharedSize, the part of it another
 *  image has too. */
export const DiskUsage = obj({
  LayersSize: Num,
  Images: T.Array(obj({ Id: Str, Names: Strs, Created: Str, Size: Num, SharedSize: Num, Containers: Num })),
  Containers: T.Array(obj({ Id: Str, Name: Str, Image: Str, State: SystemState, SizeRw: Num, SizeRootFs: Num })),
  Volumes: T.Array(obj({ Name: Str, Size: Num, RefCount: Num })),
});
export const ProcessInfo = obj({ pid: Num, ppid: Num, user: Str, command: Str, cpuNs: Num, rssBytes: Num, startedAt: opt(Str) });
/** `GET /v1/systems/{id}/properties`. */
export const SystemProperties = obj({ Statistics: opt(Statistics), ProcessList: opt(T.Array(ProcessInfo)) });

export const ImageConfig = obj({
  Env: opt(Strs), Cmd: opt(Strs), Entrypoint: opt(Strs), WorkingDir: opt(Str), User: opt(Str),
  ExposedPorts: opt(T.Record(T.String(), T.Object({}))), Labels: opt(StrMap), StopSignal: opt(Str),
  Volumes: opt(T.Record(T.String(), T.Object({}))), Shell: opt(Strs),
});
export const Image = obj({
  id: Str,
  names: Strs,
  created: Str,
  config: ImageConfig,
  layers: Strs,
  history: T.Array(obj({ created: opt(Str), created_by: opt(Str), comment: opt(Str), empty_layer: opt(T.Boolean()), author: opt(Str) })),
  size: Num,
  architecture: Str,
  os: Str,
  manifest: opt(Str),
});

const NetworkTypeSchema = T.Union([T.Literal('nat'), T.Literal('internal'), T.Literal('l2bridge')]);
export const Network = obj({
  Id: Str,
  Name: Str,
  Type: NetworkTypeSchema,
  Ipams: T.Array(obj({ Type: T.Literal('Static'), Subnets: T.Array(obj({ IpAddressPrefix: Str, GatewayAddress: opt(Str) })) })),
  Dns: obj({ ServerList: opt(Strs), Search: opt(Strs), Options: opt(Strs) }),
  Policies: T.Array(obj({ Type: Str, Settings: T.Unknown() })),
  Interface: opt(Str),
  Bridge: Str,
  CreatedAt: Str,
});

export const LoadBalancer = obj({
  Id: Str,
  Name: Str,
  FrontendVIPs: Strs,
  PortMappings: T.Array(obj({
    Protocol: T.Union([T.Literal('tcp'), T.Literal('udp')]), InternalPort: Num, ExternalPort: Num,
    DistributionType: T.Union([T.Literal('PerConnection'), T.Literal('SourceIP')]),
  })),
  Endpoints: Strs,
  CreatedAt: Str,
});

export type System = Static<typeof System>;
export type Exec = Static<typeof Exec>;
export type Statistics = Static<typeof Statistics>;
export type ProcessInfo = Static<typeof ProcessInfo>;
export type SystemProperties = Static<typeof SystemProperties>;
export type Image = Static<typeof Image>;
export type Network = Static<typeof Network>;
export type LoadBalancer = Static<typeof LoadBalancer>;
export type DiskUsage = Static<typeof DiskUsage>;
