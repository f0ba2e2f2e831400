// Item 3: memory. Each daemon's idle RSS; then, per engine in turn, 50 idle containers (`sleep`) and the host memory
// they cost: the drop of MemAvailable (everything: monitor, runtime leftovers, mounts, network, kernel objects,
// the sleeping process) per container, the summed RSS of the monitors, and the daemon's growth. MemAvailable is
// host-wide, so other users of the machine add noise: the containers start in steps and a fitted slope (± its
// standard error) is reported beside the plain end-to-end difference.

import { performance } from 'node:perf_hooks';
import type { Engine } from './engines.js';
import { errText, sleep } from '../lib/proc.js';
import { findProcesses, memAvailableKiB, rssKiB } from '../lib/procfs.js';
import { slopeWithDrift, summarize } from '../lib/stats.js';

export interface MemoryTarget {
  engine: Engine;
  /** Daemon processes by name (none for podman). */
  daemonPids: () => Promise<Array<[string, number]>>;
  monitorComms: string[];
  markers: string[];
}

export interface MemoryRow {
  key: string;
  label: string;
  na?: string;
  containers?: number;
  daemonRssBeforeMB?: number;
  daemonRssAfterMB?: number;
  /** (mean MemAvailable with none, before and after − MemAvailable with all) / containers. */
  memAvailableDropPerContainerMB?: number;
  /** Least-squares slope of the MemAvailable drop over the container count (time as a second regressor), and its SE. */
  slopePerContainerMB?: number;
  slopeSeMB?: number;
  monitorRssSumMB?: number;
  monitorRssPerContainerMB?: number;
  monitors?: number;
}

/** MemAvailable, KiB: the median of a few readings, so one allocation burst elsewhere does not decide it. */
async function reading(): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    xs.push(memAvailableKiB());
    await sleep(150);
  }
  return summarize(xs).median;
}

const sumRss = (pids: number[]) => pids.reduce((a, p) => a + rssKiB(p), 0);
const mb = (kib: number) => kib / 1024;
const STEPS = 5;

export async function memoryAt(t: MemoryTarget, count: number, log: (m: string) => void): Promise<MemoryRow> {
  const e = t.engine;
  if (e.na || !e.run || !e.rmForce) return { key: e.key, label: e.label, na: e.na ?? 'no CLI' };
  const ids: string[] = [];
  try {
    const pids = (await t.daemonPids()).map(([, p]) => p);
    await sleep(1000);
    const daemonBefore = sumRss(pids);
    // The host is shared, so MemAvailable drifts on its own: containers go up in steps and back down in steps, with a
    // reading at every step, and the fit takes time as a second regressor so that a steady drift cancels out.
    const xs: number[] = [];
    const ts: number[] = [];
    const ys: number[] = [];
    const t0 = performance.now();
    const read = async () => {
      await sleep(1500); // let monitors and daemons settle after the last change
      xs.push(ids.length);
      ts.push((performance.now() - t0) / 1000);
      ys.push(await reading());
    };
    await read();
    for (let step = 1; step <= STEPS; step++) {
      while (ids.length < Math.round((count * step) / STEPS)) ids.push((await e.run(['-d', 'busybox', 'sleep', '3600'])).stdout.trim().split('\n').pop()!);
      await read();
    }
    const peak = ys.length - 1;
    const monitors = findProcesses(t.monitorComms, t.markers);
    const monitorKiB = sumRss(monitors);
    const daemonAfter = sumRss((await t.daemonPids()).map(([, p]) => p));
    for (let step = STEPS - 1; step >= 0; step--) {
      const keep = Math.round((count * step) / STEPS);
      await e.rmForce(ids.splice(keep));
      await read();
    }
    const fit = slopeWithDrift(xs, ts, ys.map((y) => mb(ys[0] - y)));
    // End to end, drift-corrected: the mean of the readings with none (before and after) minus the one with all.
    const drop = mb((ys[0] + ys[ys.length - 1]) / 2 - ys[peak]) / count;
    log(`memory: ${e.label}: ${count} containers, ${drop.toFixed(2)} MB each (slope ${fit.slope.toFixed(2)} ± ${fit.se.toFixed(2)}), ${monitors.length} monitors`);
    return {
      key: e.key,
      label: e.label,
      containers: count,
      daemonRssBeforeMB: pids.length ? mb(daemonBefore) : undefined,
      daemonRssAfterMB: pids.length ? mb(daemonAfter) : undefined,
      memAvailableDropPerContainerMB: drop,
      slopePerContainerMB: fit.slope,
      slopeSeMB: fit.se,
      monitorRssSumMB: mb(monitorKiB),
      monitorRssPerContainerMB: monitors.length ? mb(monitorKiB) / count : undefined,
      monitors: monitors.length,
    };
  } catch (err) {
    return { key: e.key, label: e.label, na: errText(err) };
  } finally {
    for (let i = 0; i < ids.length; i += 25) await e.rmForce(ids.slice(i, i + 25)).catch((err) => log(`memory: rm: ${errText(err)}`));
  }
}

/** Idle RSS of each daemon process now (MB): nothing runs, no request is in flight. */
export async function idleRss(targets: MemoryTarget[]): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const t of targets) {
    const parts: Record<string, number> = {};
    for (const [name, pid] of await t.daemonPids()) parts[name] = mb(rssKiB(pid));
    out[t.engine.key] = parts;
  }
  return out;
}
