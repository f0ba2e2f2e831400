// Item 2: containers started and removed per second with 8 concurrent clients: a bounded count of
// `run --rm busybox true` per engine, 8 at a time, timed from the first start to the last return. Repetitions
// alternate the engines so drift spreads over all of them.

import { performance } from 'node:perf_hooks';
import type { Engine } from './engines.js';
import { errText } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';
import { cpuMs } from '../lib/procfs.js';

export interface ThroughputRow {
  key: string;
  label: string;
  na?: string;
  perSecond?: Summary;
  count?: number;
  concurrency?: number;
  failures?: number;
  /** CPU the engine's daemons (Silo's; dockerd + containerd) used per container, ms, median over the batches. */
  daemonCpuMsPerContainer?: Summary;
}

async function batch(e: Engine, count: number, concurrency: number): Promise<{ perSecond: number; failures: number }> {
  let next = 0;
  let failures = 0;
  let lastError = '';
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        await e.runTrue();
      } catch (err) {
        failures++;
        lastError = errText(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  if (failures > count / 10) throw new Error(`${failures}/${count} runs failed, last: ${lastError}`);
  return { perSecond: (count - failures) / secs, failures };
}

/** `daemons`: per engine key, the pids whose CPU counts as that engine's daemon work. */
export async function throughput(list: Engine[], count: number, reps: number, concurrency: number, log: (m: string) => void, daemons: Record<string, () => Promise<number[]>> = {}): Promise<ThroughputRow[]> {
  const rates = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const fails = new Map<string, number>();
  const na = new Map<string, string>();
  for (let r = 0; r < reps; r++) {
    const live = list.filter((e) => !e.na && !na.has(e.key));
    for (let j = 0; j < live.length; j++) {
      const e = live[(r + j) % live.length];
      try {
        const pids = (await daemons[e.key]?.()) ?? [];
        const cpu0 = pids.reduce((a, p) => a + cpuMs(p), 0);
        const b = await batch(e, count, concurrency);
        const used = pids.reduce((a, p) => a + cpuMs(p), 0) - cpu0;
        if (pids.length) (cpu.get(e.key) ?? cpu.set(e.key, []).get(e.key)!).push(used / count);
        (rates.get(e.key) ?? rates.set(e.key, []).get(e.key)!).push(b.perSecond);
        fails.set(e.key, (fails.get(e.key) ?? 0) + b.failures);
        log(`throughput: ${e.label}: ${b.perSecond.toFixed(2)}/s`);
      } catch (err) {
        na.set(e.key, errText(err));
        log(`throughput: ${e.label}: n/a (${na.get(e.key)})`);
      }
    }
  }
  return list.map((e) => {
    const xs = rates.get(e.key);
    if (!xs?.length || na.has(e.key)) return { key: e.key, label: e.label, na: na.get(e.key) ?? e.na ?? 'no samples' };
    const c = cpu.get(e.key);
    return { key: e.key, label: e.label, perSecond: summarize(xs), count, concurrency, failures: fails.get(e.key) ?? 0, ...(c?.length ? { daemonCpuMsPerContainer: summarize(c) } : {}) };
  });
}
