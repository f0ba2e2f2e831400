// Compile-time only: every service record the native API sends as-is must be assignable to its wire object
// (wire.ts), and every body the schemas accept must be what its service takes: a record or request that drifts
// from the wire fails the build here instead of surprising a client.

import type { ComputeSystemRecord, ExecRecord, SystemProperties } from '../../compute/types.js';
import type { CreateLoadBalancerRequest, CreateNetworkRequest, LoadBalancer, Network } from '../../network/types.js';
import type { Image } from '../../storage/types.js';
import type * as W from './wire.js';

type Sends<Record, Wire> = Record extends Wire ? true : never;

export const wireMatches: [
  Sends<ComputeSystemRecord, W.System>,
  Sends<ExecRecord, W.Exec>,
  Sends<SystemProperties, W.SystemProperties>,
  Sends<Image, W.Image>,
  Sends<Network, W.Network>,
  Sends<LoadBalancer, W.LoadBalancer>,
  // And the other way: a body the schema accepts is what the service takes.
  Sends<W.CreateNetworkBody, CreateNetworkRequest>,
  Sends<W.CreateLoadBalancerBody, CreateLoadBalancerRequest>,
] = [true, true, true, true, true, true, true, true];
