// Item 1: `run --rm busybox true` end to end, N times per engine, round-robin: round i runs every engine once, starting
// from a different engine each round, so load from other users of the machine and slow drift land on all engines
// alike. Silo's native API rows also record the time of each call, the phases of Silo's run.

import type { Engine } from './engines.js';
import { errText } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface LatencyRow {
  key: string;
  label: string;
  na?: string;
  ms?: Summary;
  samples?: number[];
  failures?: number;
  /** Median of each phase (native API rows). */
  phases?: Record<string, Summary>;
}

export async function latency(list: Engine[], n: number, log: (m: string) => void): Promise<LatencyRow[]> {
  const live = list.filter((e) => !e.na);
  const samples = new Map<string, number[]>(live.map((e) => [e.key, []]));
  const phases = new Map<string, Record<string, number[]>>();
  const failures = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < live.length; j++) {
      const e = live[(i + j) % live.length];
      if (e.na) continue;
      try {
        samples.get(e.key)!.push(await e.runTrue());
        if (e.lastPhases) {
          const p = phases.get(e.key) ?? {};
          for (const [k, v] of Object.entries(e.lastPhases)) (p[k] ??= []).push(v);
          phases.set(e.key, p);
        }
      } catch (err) {
        failures.set(e.key, (failures.get(e.key) ?? 0) + 1);
        log(`${e.label}: run failed: ${errText(err)}`);
        if (failures.get(e.key)! >= 3) e.na = `failed 3 times, last: ${errText(err)}`;
      }
    }
    if ((i + 1) % 10 === 0) log(`latency: round ${i + 1}/${n}`);
  }
  return list.map((e) => {
    const xs = samples.get(e.key);
    if (e.na || !xs?.length) return { key: e.key, label: e.label, na: e.na ?? 'no samples' };
    const p = phases.get(e.key);
    return {
      key: e.key,
      label: e.label,
      ms: summarize(xs),
      samples: xs.map((x) => Number(x.toFixed(2))),
      failures: failures.get(e.key) ?? 0,
      phases: p ? Object.fromEntries(Object.entries(p).map(([k, v]) => [k, summarize(v)])) : undefined,
    };
  });
}
