// The job: the container's cgroup /<parent>/<id> in every v1 controller (and the unified tree on hybrid hosts).
// Statistics and process listings read it directly; remove() takes its leaves away once the job holds no process.

import { existsSync, readdirSync, rmdirSync, type Dirent } from 'node:fs';
import { readSmallText } from '../../common/atomic.js';
import { join } from 'node:path';
import type { ProcessInfo, Statistics } from '../backend.js';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** USER_HZ: the unit of /proc/<pid>/stat times and cpuacct.stat; 100 on every Linux architecture we run on. */
const USER_HZ = 100;
const NS_PER_TICK = 1e9 / USER_HZ;

async function text(p: string): Promise<string> {
  return readSmallText(p);
}

async function num(p: string): Promise<number> {
  const t = (await text(p)).trim();
  if (!t || t === 'max') return 0;
  const n = Number(t);
  return Number.isFinite(n) ? n : 0;
}

/** "key value" lines → map. */
function kv(t: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of t.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v) || 0);
  }
  return m;
}

export class Job {
  constructor(readonly rel: string) {}

  path(controller: string): string {
    return join(CGROUP_ROOT, controller, this.rel);
  }

  async statistics(): Promise<Statistics> {
    const cpuacct = this.path('cpuacct');
    const total = await num(join(cpuacct, 'cpuacct.usage'));
    let user = await num(join(cpuacct, 'cpuacct.usage_user'));
    let sys = await num(join(cpuacct, 'cpuacct.usage_sys'));
    if (!user && !sys) {
      const st = kv(await text(join(cpuacct, 'cpuacct.stat')));
      user = (st.get('user') ?? 0) * NS_PER_TICK;
      sys = (st.get('system') ?? 0) * NS_PER_TICK;
    }
    const cpuStat = kv(await text(join(this.path('cpu'), 'cpu.stat')));
    const mem = this.path('memory');
    const pids = this.path('pids');
    let readBytes = 0;
    let writeBytes = 0;
    const blk = this.path('blkio');
    let io = await text(join(blk, 'blkio.throttle.io_service_bytes_recursive'));
    if (!io.trim()) io = await text(join(blk, 'blkio.throttle.io_service_bytes'));
    for (const line of io.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length !== 3) continue; // the "Total N" line has two fields
      if (f[1] === 'Read') readBytes += Number(f[2]) || 0;
      if (f[1] === 'Write') writeBytes += Number(f[2]) || 0;
    }
    return {
      timestamp: new Date().toISOString(),
      cpu: {
        totalNs: total,
        userNs: user,
        kernelNs: sys,
        throttledPeriods: cpuStat.get('nr_throttled') ?? 0,
        throttledNs: cpuStat.get('throttled_time') ?? 0,
      },
      memory: {
        usageBytes: await num(join(mem, 'memory.usage_in_bytes')),
        peakBytes: await num(join(mem, 'memory.max_usage_in_bytes')),
        limitBytes: await num(join(mem, 'memory.limit_in_bytes')),
        failCount: await num(join(mem, 'memory.failcnt')),
      },
      // limit 0 = unlimited ("max").
      pids: { current: await num(join(pids, 'pids.current')), limit: await num(join(pids, 'pids.max')) },
      io: { readBytes, writeBytes },
    };
  }

  /** Processes of the job, from the pids controller (any controller lists the same processes). */
  async pids(): Promise<number[]> {
    for (const c of ['pids', 'memory', 'cpuacct']) {
      const t = await text(join(this.path(c), 'cgroup.procs'));
      if (t) return t.split('\n').filter(Boolean).map(Number);
    }
    return [];
  }

  /** Processes in the job and any cgroup below it (the pids controller counts hierarchically); undefined when the
   *  controller or the job's cgroup is missing. */
  async processCount(): Promise<number | undefined> {
    const t = (await text(join(this.path('pids'), 'pids.current'))).trim();
    return /^\d+$/.test(t) ? Number(t) : undefined;
  }

  /** OOM kills the memory controller counted (kernel ≥4.13 reports oom_kill in memory.oom_control). */
  async oomKills(): Promise<number> {
    return kv(await text(join(this.path('memory'), 'memory.oom_control'))).get('oom_kill') ?? 0;
  }

  async memoryFailCount(): Promise<number> {
    return num(join(this.path('memory'), 'memory.failcnt'));
  }

  /** rmdir the job in every hierarchy. Never recursive: only our leaf. */
  async remove(): Promise<void> {
    // Synchronously (directory entries, an access() and an rmdir per hierarchy): cgroupfs is in memory, so each call
    // is microseconds, where a thread-pool round trip wakes a worker and then the event loop (~10 per container since
    // a stopped container's removal no longer runs `runc delete`, which used to remove the leaves). Only a leaf still
    // busy with dying processes is tried again, after pauses of 100 ms.
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(CGROUP_ROOT, { withFileTypes: true });
    } catch {
      return;
    }
    for (const c of entries) {
      if (c.isSymbolicLink()) continue; // cpu → cpu,cpuacct: same hierarchy
      const dir = join(CGROUP_ROOT, c.name, this.rel);
      if (!existsSync(dir)) continue;
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') break;
          if (code !== 'EBUSY' || attempt === 19) break; // dying processes: retry briefly
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  }
}

/** Boot time in ms since the epoch, for process start times. */
async function bootTimeMs(): Promise<number> {
  const m = /^btime (\d+)$/m.exec(await text('/proc/stat'));
  return m ? Number(m[1]) * 1000 : 0;
}

/** One row of a process listing from /proc; undefined when the process is gone. */
export async function procInfo(pid: number, names: Map<number, string>, boot: number): Promise<ProcessInfo | undefined> {
  const stat = await text(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const f = stat.slice(close + 2).split(' '); // f[0] = field 3 (state)
  const ppid = Number(f[1]);
  const ticks = Number(f[11]) + Number(f[12]); // utime + stime
  const startTicks = Number(f[19]);
  const status = await text(`/proc/${pid}/status`);
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  const cmdline = (await text(`/proc/${pid}/cmdline`)).split('\0').filter(Boolean).join(' ');
  return {
    pid,
    ppid,
    user: names.get(uid) ?? String(uid),
    command: cmdline || `[${comm}]`,
    cpuNs: ticks * NS_PER_TICK,
    rssBytes: rssKb * 1024,
    startedAt: boot ? new Date(boot + (startTicks * 1000) / USER_HZ).toISOString() : undefined,
  };
}

export async function processList(pids: number[], names: Map<number, string>): Promise<ProcessInfo[]> {
  const boot = await bootTimeMs();
  const rows = await Promise.all(pids.map((p) => procInfo(p, names, boot)));
  return rows.filter((r): r is ProcessInfo => r !== undefined).sort((a, b) => a.pid - b.pid);
}
