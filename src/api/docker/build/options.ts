// The classic builder's query options beyond the Dockerfile's own (POST /build): the limits of its RUN steps, what
// the CLI sends only when the user set it (docker build --cpu-shares …), checked as `docker run` checks them. An
// option Silo cannot honour is refused rather than dropped.

import { dockerInvalid } from '../errors.js';
import { first, int, type Query } from '../util.js';
import type { Resources } from './steps.js';

const REFUSED: Record<string, string> = {
  cgroupparent: '--cgroup-parent is not supported by Silo: the steps run in its own cgroup tree',
  cpusetmems: '--cpuset-mems is not supported by Silo',
  securityopt: '--security-opt is not supported by Silo for a build: its steps run with the default profile',
  squash: '--squash is not supported by Silo',
  outputs: '--output is a BuildKit option; Silo has the classic builder',
};

/** Step limits from the query; throws on an option refused or out of range. */
export function stepLimits(q: Query): Pick<Resources, 'cpuShares' | 'cpus' | 'cpusetCpus' | 'shmSize' | 'ulimits' | 'memory'> {
  for (const [k, why] of Object.entries(REFUSED)) if (first(q[k])) throw dockerInvalid(why);
  const version = first(q.version) ?? '1';
  if (version !== '1') throw dockerInvalid(`builder version ${version} (BuildKit) is not supported by Silo: it has the classic builder (version 1)`);
  const iso = first(q.isolation) ?? '';
  if (!['', 'default', 'process'].includes(iso)) throw dockerInvalid(`isolation ${iso} is not supported for a build by Silo: its steps run with process isolation`);
  const platform = first(q.platform) ?? '';
  if (platform && !/^linux(\/amd64)?$/.test(platform)) throw dockerInvalid(`platform ${platform} is not supported for a build by Silo: it builds linux/amd64`);
  const memory = int(q.memory, 'memory') || undefined;
  const memswap = int(q.memswap, 'memswap') ?? 0;
  if (memswap > 0 && memswap !== memory) throw dockerInvalid('--memory-swap larger than --memory is not supported by Silo: this kernel has no swap accounting');
  const shares = int(q.cpushares, 'cpushares') ?? 0;
  const period = int(q.cpuperiod, 'cpuperiod') ?? 0;
  const quota = int(q.cpuquota, 'cpuquota') ?? 0;
  if (period !== 0 && (period < 1000 || period > 1000000)) throw dockerInvalid('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (quota > 0 && quota < 1000) throw dockerInvalid('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (period > 0 && quota <= 0) throw dockerInvalid('--cpu-period without --cpu-quota is not supported by Silo: it sets no limit');
  const cpuset = first(q.cpusetcpus) ?? '';
  if (cpuset && !/^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/.test(cpuset)) throw dockerInvalid(`invalid value ${cpuset} for cpuset cpus`);
  const shm = int(q.shmsize, 'shmsize') ?? 0;
  if (shm < 0) throw dockerInvalid('SHM size can not be less than 0');
  let ulimits: Resources['ulimits'];
  const raw = first(q.ulimits);
  if (raw && raw !== 'null') {
    try {
      ulimits = (JSON.parse(raw) as { Name: string; Soft: number; Hard: number }[]).map((u) => ({ Name: String(u.Name), Soft: Number(u.Soft), Hard: Number(u.Hard) }));
    } catch {
      throw dockerInvalid(`invalid ulimits: ${raw}`);
    }
  }
  return {
    ...(memory ? { memory } : {}),
    ...(shares > 0 ? { cpuShares: Math.min(262144, Math.max(2, shares)) } : {}),
    ...(quota > 0 ? { cpus: quota / (period > 0 ? period : 100000) } : {}),
    ...(cpuset ? { cpusetCpus: cpuset } : {}),
    ...(shm > 0 ? { shmSize: shm } : {}),
    ...(ulimits?.length ? { ulimits } : {}),
  };
}
