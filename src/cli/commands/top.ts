// `silo top CONTAINER`: PID USER TIME CMD from the ProcessList property.

import type { SystemProperties } from '../../api/native/wire.js';
import { call, enc } from '../client.js';
import { cpuTime, table } from '../format.js';

export async function top(ref: string): Promise<number> {
  const p = await call<SystemProperties>('GET', `/v1/systems/${enc(ref)}/properties?types=ProcessList`);
  const rows = (p.ProcessList ?? []).map((x) => [String(x.pid), x.user, cpuTime(x.cpuNs), x.command]);
  process.stdout.write(`${table(['PID', 'USER', 'TIME', 'CMD'], rows)}\n`);
  return 0;
}
