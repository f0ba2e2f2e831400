// Memory as the kernel reports it: a process' resident set (VmRSS), the host's MemAvailable, and the container
// monitors of an engine (conmon for Silo and podman, containerd-shim for docker) found by a path in their command line.

import { readFileSync, readdirSync } from 'node:fs';

/** VmRSS in KiB, or 0 if the process is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** VmRSS split as the kernel counts it, KiB: anonymous pages (heap, stacks) and file pages (the binary, libraries). */
export function rssSplitKiB(pid: number): { anon: number; file: number } | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN);
    return { anon: get('RssAnon'), file: get('RssFile') + get('RssShmem') };
  } catch {
    return undefined;
  }
}

export function memAvailableKiB(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
}

/** Pids whose comm is one of `comms` and whose command line contains one of `markers`. */
export function findProcesses(comms: string[], markers: string[]): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const comm = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      if (!comms.includes(comm)) continue;
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (markers.some((m) => cmd.includes(m))) out.push(Number(p));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** User + system CPU time a process has used so far, ms (from /proc/<pid>/stat; 0 when it is gone). */
export function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}
