// Request body schemas of the native API. Fastify validates every body against these before a handler runs;
// unknown properties are refused so a typo never passes silently.

import { Type as T, type TSchema } from '@sinclair/typebox';

const strict = <S extends Record<string, TSchema>>(props: S) => T.Object(props, { additionalProperties: false });
const StrMap = T.Record(T.String(), T.String());

const ProcessParameters = strict({
  CommandArgs: T.Optional(T.Array(T.String())),
  Entrypoint: T.Optional(T.Array(T.String())),
  WorkingDirectory: T.Optional(T.String()),
  Environment: T.Optional(StrMap),
  User: T.Optional(T.String()),
  EmulateConsole: T.Optional(T.Boolean()),
  CreateStdInPipe: T.Optional(T.Boolean()),
  ConsoleSize: T.Optional(T.Tuple([T.Integer({ minimum: 0 }), T.Integer({ minimum: 0 })])),
});

const MappedDirectory = strict({
  HostPath: T.String({ minLength: 1 }),
  ContainerPath: T.String({ minLength: 1 }),
  ReadOnly: T.Optional(T.Boolean()),
});

const Port = T.Integer({ minimum: 1, maximum: 65535 });
const Protocol = T.Union([T.Literal('tcp'), T.Literal('udp')]);
const PortMapping = strict({ Protocol, InternalPort: Port, ExternalPort: Port, HostIp: T.Optional(T.String({ format: 'ipv4' })) });

const Container = strict({
  GuestOs: T.Optional(strict({ HostName: T.String({ maxLength: 63, pattern: '^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$' }) })),
  Storage: T.Optional(strict({ ScratchSizeInBytes: T.Optional(T.Integer({ minimum: 1 })) })),
  MappedDirectories: T.Optional(T.Array(MappedDirectory)),
  Memory: T.Optional(strict({ SizeInMB: T.Number({ exclusiveMinimum: 0 }) })),
  Processor: T.Optional(strict({ Count: T.Optional(T.Number()), Maximum: T.Optional(T.Integer()), Weight: T.Optional(T.Integer()) })),
  Pids: T.Optional(strict({ Limit: T.Integer({ minimum: 1 }) })),
  Networking: T.Optional(
    strict({
      Network: T.Optional(T.String({ minLength: 1 })),
      IpAddress: T.Optional(T.String({ format: 'ipv4' })),
      Aliases: T.Optional(T.Array(T.String({ minLength: 1, maxLength: 253 }))),
      PortMappings: T.Optional(T.Array(PortMapping)),
    }),
  ),
});

const RestartPolicy = strict({
  Name: T.Union([T.Literal('no'), T.Literal('always'), T.Literal('unless-stopped'), T.Literal('on-failure')]),
  MaximumRetryCount: T.Optional(T.Integer({ minimum: 0 })),
});

export const CreateSystem = strict({
  Name: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
  Image: T.String({ minLength: 1, maxLength: 512 }),
  Document: T.Optional(
    strict({
      Owner: T.Optional(T.String()),
      Isolation: T.Optional(T.String()),
      Container: T.Optional(Container),
      Process: T.Optional(ProcessParameters),
      StopSignal: T.Optional(T.String()),
      StopTimeoutSeconds: T.Optional(T.Integer({ minimum: 0 })),
      AutoRemove: T.Optional(T.Boolean()),
      RestartPolicy: T.Optional(RestartPolicy),
      Init: T.Optional(T.Boolean()),
      Labels: T.Optional(StrMap),
    }),
  ),
});

export const Shutdown = strict({ TimeoutSeconds: T.Optional(T.Integer({ minimum: 0 })), Signal: T.Optional(T.String()) });
export const Signal = strict({ Signal: T.Union([T.String({ minLength: 1 }), T.Integer({ minimum: 1 })]) });
export const Modify = strict({ ResourcePath: T.String(), Settings: T.Unknown() });
export const Commit = strict({
  Name: T.Optional(T.String()),
  Comment: T.Optional(T.String()),
  Author: T.Optional(T.String()),
  Changes: T.Optional(T.Array(T.String())),
});
export const Exec = ProcessParameters;
export const Tag = strict({ Name: T.String({ minLength: 1 }) });
export const Resize = strict({ h: T.Integer({ minimum: 0, maximum: 65535 }), w: T.Integer({ minimum: 0, maximum: 65535 }) });

export const CreateNetwork = strict({
  Name: T.String({ minLength: 1, maxLength: 64, pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' }),
  Type: T.Optional(T.Union([T.Literal('nat'), T.Literal('internal'), T.Literal('l2bridge')])),
  Subnets: T.Optional(T.Array(strict({ IpAddressPrefix: T.String(), GatewayAddress: T.Optional(T.String({ format: 'ipv4' })) }))),
  Dns: T.Optional(strict({ ServerList: T.Optional(T.Array(T.String({ format: 'ipv4' }))), Search: T.Optional(T.Array(T.String())) })),
  Policies: T.Optional(T.Array(strict({ Type: T.Literal('OutBoundNAT'), Settings: strict({ Exceptions: T.Optional(T.Array(T.String())) }) }))),
  Interface: T.Optional(T.String({ minLength: 1, maxLength: 15 })),
});

const Policy = strict({ Type: T.Union([T.Literal('PortMapping'), T.Literal('ACL'), T.Literal('OutBoundNAT'), T.Literal('Route')]), Settings: T.Record(T.String(), T.Unknown()) });
export const ModifyEndpoint = strict({ RequestType: T.Union([T.Literal('Add'), T.Literal('Remove'), T.Literal('Update')]), Policies: T.Array(Policy) });
export const Connect = strict({ Network: T.String({ minLength: 1 }), IpAddress: T.Optional(T.String({ format: 'ipv4' })), Aliases: T.Optional(T.Array(T.String({ minLength: 1 }))) });
export const CreateLoadBalancer = strict({
  Name: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
  FrontendVIPs: T.Optional(T.Array(T.String({ format: 'ipv4' }))),
  PortMappings: T.Array(strict({ Protocol, InternalPort: Port, ExternalPort: Port, DistributionType: T.Optional(T.Union([T.Literal('PerConnection'), T.Literal('SourceIP')])) }), { minItems: 1 }),
  Endpoints: T.Optional(T.Array(T.String({ minLength: 1 }))),
});
export const Backends = strict({ Add: T.Optional(T.Array(T.String({ minLength: 1 }))), Remove: T.Optional(T.Array(T.String({ minLength: 1 }))) });
