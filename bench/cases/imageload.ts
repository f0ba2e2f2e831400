// Item 5: `docker load` of the same multi-layer archive, into Silo (through its Docker API) and into dockerd: wall
// time of the client command and MB/s (10^6 bytes of archive per second). The image is removed after every load so
// each repetition stores every layer anew; repetitions alternate the engines.

import type { Archive } from '../lib/archive.js';
import { errText, exec, tryExec } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface Loader {
  key: string;
  label: string;
  cli: string;
  pre: string[];
}

export interface ImageRow {
  key: string;
  label: string;
  na?: string;
  seconds?: Summary;
  mbPerSec?: Summary;
}

export async function imageLoad(loaders: Loader[], a: Archive, reps: number, log: (m: string) => void): Promise<ImageRow[]> {
  const secs = new Map<string, number[]>();
  const na = new Map<string, string>();
  const rmi = (l: Loader) => tryExec(l.cli, [...l.pre, 'rmi', '-f', a.tag], { timeoutMs: 120_000 });
  for (const l of loaders) await rmi(l);
  for (let r = 0; r < reps; r++) {
    const live = loaders.filter((l) => !na.has(l.key));
    for (let j = 0; j < live.length; j++) {
      const l = live[(r + j) % live.length];
      try {
        await exec('sync', []); // the archive's writing should not be flushed on someone's clock
        const out = await exec(l.cli, [...l.pre, 'load', '-i', a.path], { timeoutMs: 300_000 });
        (secs.get(l.key) ?? secs.set(l.key, []).get(l.key)!).push(out.ms / 1000);
        log(`image load: ${l.label}: ${(out.ms / 1000).toFixed(2)} s`);
      } catch (e) {
        na.set(l.key, errText(e));
        log(`image load: ${l.label}: n/a (${na.get(l.key)})`);
      } finally {
        await rmi(l);
      }
    }
  }
  return loaders.map((l) => {
    const xs = secs.get(l.key);
    if (!xs?.length || na.has(l.key)) return { key: l.key, label: l.label, na: na.get(l.key) ?? 'no samples' };
    return { key: l.key, label: l.label, seconds: summarize(xs), mbPerSec: summarize(xs.map((s) => a.bytes / 1e6 / s)) };
  });
}
