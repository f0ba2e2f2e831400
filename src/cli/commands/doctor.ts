// `silo doctor [--fix] [--format json]`: kernel objects and processes with Silo's names that no Silo object owns.
// Exit 0 when there are none (or --fix removed them), 1 when some are left.

import { call } from '../client.js';
import { table } from '../format.js';

interface Finding {
  Kind: string;
  Object: string;
  Why: string;
}

export async function doctor(o: { fix?: boolean; format?: string }): Promise<number> {
  const found = await call<Finding[]>(o.fix ? 'POST' : 'GET', o.fix ? '/v1/doctor/fix' : '/v1/doctor');
  if (o.format === 'json') process.stdout.write(JSON.stringify(found) + '\n');
  else if (!found.length) process.stdout.write('No leaks: every mount, loop device, cgroup, monitor, namespace and link of Silo has an owner.\n');
  else {
    process.stdout.write(table(['KIND', 'OBJECT', 'WHY'], found.map((f) => [f.Kind, f.Object, f.Why])) + '\n');
    if (o.fix) process.stdout.write(`Removed ${found.length} leaked object${found.length === 1 ? '' : 's'}.\n`);
  }
  return found.length && !o.fix ? 1 : 0;
}
