// Item 6: policy scaling comes from the existing bench/network-policy-scaling.ts (run as its own process, with its own
// `silo-bench-…` network service that it purges): its table gives, for each mark, the n-th addition's own time and
// the median of the ten additions around it; the comparison uses those medians, the single values are kept too.

import { join } from 'node:path';
import { errText, exec } from '../lib/proc.js';

export interface PolicyCurve {
  title: string;
  marks: Array<{ n: number; ms: number; medianMs: number }>;
}

export interface PolicyResult {
  count: number;
  na?: string;
  portMappings?: PolicyCurve;
  backends?: PolicyCurve;
  removeOneBackendMs?: number;
  seconds?: number;
}

export function parsePolicy(out: string): Omit<PolicyResult, 'count'> {
  const curves: PolicyCurve[] = [];
  let cur: PolicyCurve | undefined;
  for (const line of out.split('\n')) {
    const row = /^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s*$/.exec(line);
    if (row && cur) cur.marks.push({ n: Number(row[1]), ms: Number(row[2]), medianMs: Number(row[3]) });
    else if (/^(port mappings|load-balancer backends)/.test(line)) curves.push((cur = { title: line.trim(), marks: [] }));
  }
  const rm = /removing one backend of \d+: ([\d.]+) ms/.exec(out);
  const pm = curves.find((c) => c.title.startsWith('port mappings'));
  const be = curves.find((c) => c.title.startsWith('load-balancer'));
  if (!pm?.marks.length || !be?.marks.length) throw new Error(`unexpected output: ${out.trim().slice(-200)}`);
  return { portMappings: pm, backends: be, removeOneBackendMs: rm ? Number(rm[1]) : undefined };
}

export async function policyScaling(distBench: string, count: number): Promise<PolicyResult> {
  try {
    const r = await exec(process.execPath, [join(distBench, 'network-policy-scaling.js'), String(count)], { timeoutMs: 600_000 });
    return { count, seconds: r.ms / 1000, ...parsePolicy(r.stdout) };
  } catch (e) {
    return { count, na: errText(e) };
  }
}
