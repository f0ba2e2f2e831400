// Request body schemas of the native API. Fastify validates every body against these before a handler runs;
// unknown properties are refused so a typo never passes silently.

import { Type as T, type TSchema } from '@sinclair/typebox';
import { ProcessParameters, Protocol } from '../../compute/spec/schema.js';

const strict = <S extends Record<string, TSchema>>(props: S) => T.Object(props, { additionalProperties: false });

/** The create body is the compute service's one create specification, defined once in its own module. */
export { CreateSpec as CreateSystem } from '../../compute/spec/schema.js';

const Port = T.Integer({ minimum: 1, maximum: 65535 });

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
  Subnets: T.Optional(T.Array(strict({ IpAddressPrefix: T.String(), GatewayAddress: T.Optional(T.Union([T.String({ format: 'ipv4' }), T.String({ format: 'ipv6' })])), IpRange: T.Optional(T.String()), Reserved: T.Optional(T.Record(T.String(), T.String({ format: 'ipv4' }))) }))),
  Dns: T.Optional(strict({ ServerList: T.Optional(T.Array(T.String({ format: 'ipv4' }))), Search: T.Optional(T.Array(T.String())) })),
  Policies: T.Optional(T.Array(strict({ Type: T.Literal('OutBoundNAT'), Settings: strict({ Exceptions: T.Optional(T.Array(T.String())) }) }))),
  Interface: T.Optional(T.String({ minLength: 1, maxLength: 15 })),
  Labels: T.Optional(T.Record(T.String(), T.String())),
  /** Dual-stack: an IPv6 subnet (in Subnets, or a random unique-local /64) beside the IPv4 one. */
  EnableIpv6: T.Optional(T.Boolean()),
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
