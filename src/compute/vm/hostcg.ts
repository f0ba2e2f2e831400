// The host cgroup around a utility VM's QEMU: its memory (guest RAM plus QEMU's own), CPU quota (the vCPUs) and pids.
// cgroup v1 (one directory per controller) or v2 (one directory), whichever the host mounts.

import { existsSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';
const V1 = ['memory', 'cpu', 'pids'];
/** QEMU's own memory beside guest RAM: device models, the TCG translation cache (32 MiB), I/O buffers. */
export const QEMU_OVERHEAD_MIB = 192;

export class HostCgroup {
  private readonly v2 = existsSync(join(ROOT, 'cgroup.controllers'));

  constructor(readonly rel: string) {}

  private dirs(): string[] {
    return this.v2 ? [join(ROOT, this.rel)] : V1.filter((c) => existsSync(join(ROOT, c))).map((c) => join(ROOT, c, this.rel));
  }

  /** Make the cgroup with its limits; returns the cgroup.procs files QEMU joins. */
  async create(memoryMiB: number, cpus: number | undefined): Promise<string[]> {
    const limit = String((memoryMiB + QEMU_OVERHEAD_MIB) * 1024 * 1024);
    for (const d of this.dirs()) {
      await mkdir(d, { recursive: true });
      if (this.v2) {
        await writeFile(join(d, 'memory.max'), limit).catch(() => {});
        if (cpus) await writeFile(join(d, 'cpu.max'), `${Math.round(cpus * 100000)} 100000`).catch(() => {});
      } else if (d.startsWith(join(ROOT, 'memory'))) await writeFile(join(d, 'memory.limit_in_bytes'), limit);
      else if (d.startsWith(join(ROOT, 'cpu')) && cpus) {
        await writeFile(join(d, 'cpu.cfs_period_us'), '100000');
        await writeFile(join(d, 'cpu.cfs_quota_us'), String(Math.round(cpus * 100000)));
      }
    }
    return this.dirs().map((d) => join(d, 'cgroup.procs'));
  }

  /** Remove it once QEMU is gone; what is not there is no error. */
  async remove(): Promise<void> {
    for (const d of this.dirs()) {
      // A QEMU just killed is still in it while the kernel tears its memory down (≈25–30 ms here): looked at every
      // 5 ms (every 50 ms cost a `run --rm` of a VM ≈45 ms), for a second at most as before.
      for (let i = 0; i < 200; i++) {
        const e = await rmdir(d).then(() => undefined, (x: NodeJS.ErrnoException) => x);
        if (!e || e.code === 'ENOENT') break;
        if (e.code !== 'EBUSY') throw e;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }
}
