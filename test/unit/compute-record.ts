// A compute system's record as the store holds it, for unit tests of the compute service with stub backends.

import type { Isolation } from '../../src/compute/backend.js';
import type { ComputeSystemRecord } from '../../src/compute/types.js';

export function stubRecord(id: string, isolation: Isolation | undefined, state: ComputeSystemRecord['State'], name = `sys-${id.slice(0, 4)}`): ComputeSystemRecord {
  return {
    Id: id,
    Name: name,
    Created: new Date().toISOString(),
    State: state,
    Document: {
      Owner: 'silo',
      SchemaVersion: { Major: 2, Minor: 1 },
      Isolation: isolation as Isolation,
      Container: { GuestOs: { HostName: 'h' }, Storage: { Image: 'busybox', ScratchSizeInBytes: 1 << 26 } },
      Process: {},
    },
    Init: { Args: ['sh'], Env: [], Cwd: '/', User: '0:0', Tty: false, Stdin: false },
    ImageId: 'sha256:' + 'f'.repeat(64),
    ImageName: 'busybox',
    RestartCount: 0,
  } as ComputeSystemRecord;
}
