// The CRI section of BENCHMARKS.md, from bench/results/cri.json alone (written by `npm run bench:cri`).

export interface CritestScore {
  version: string;
  passed: number;
  failed: number;
  skipped: number;
  wallSeconds: number;
  failures: string[];
}

export interface CriResults {
  date: string;
  podStart: { rounds: number; siloMs: number[]; containerdMs?: number[]; siloMedianMs: number; containerdMedianMs?: number };
  critest: CritestScore[];
  containerdVersion?: string;
}

/** containerd 1.6.20 with runc 1.1.5 on this kind of machine (shared/tools/cri/README.md). */
const REFERENCE: Record<string, [number, number, number]> = { 'v1.29.0': [77, 1, 5], 'v1.32.0': [84, 3, 26] };

const spread = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))];
  return `${q(0.25).toFixed(0)}–${q(0.75).toFixed(0)}`;
};

export function criSection(r: CriResults): string {
  const p = r.podStart;
  const lines = [
    '<!-- cri:start -->',
    '## Kubernetes CRI (`npm run bench:cri`)',
    '',
    `Run ${r.date.slice(0, 10)}. critest against Silo's CRI socket, with critest's stand-in images in a local registry that`,
    'Silo uses as the mirror of docker.io, registry.k8s.io and gcr.io; the reference is containerd 1.6.20 + runc on this',
    'kind of machine. Too slow for `npm test` (critest alone takes minutes), so it is measured here.',
    '',
    '| critest | passed | failed | skipped | wall | containerd 1.6.20 (passed / failed / skipped) |',
    '|---|---|---|---|---|---|',
    ...r.critest.map((c) => `| ${c.version} | ${c.passed} | ${c.failed} | ${c.skipped} | ${c.wallSeconds} s | ${(REFERENCE[c.version] ?? []).join(' / ') || 'n/a'} |`),
    '',
    ...r.critest.flatMap((c) => c.failures.map((f) => `- ${c.version} failed: ${f}`)),
    '',
    `Pod start to running (RunPodSandbox + CreateContainer + StartContainer of busybox, through each runtime's CRI socket),`,
    `${p.rounds} rounds interleaved, after one warm-up each:`,
    '',
    '| runtime | median | IQR | ratio |',
    '|---|---|---|---|',
    `| Silo | ${p.siloMedianMs.toFixed(1)} ms | ${spread(p.siloMs)} ms | ${p.containerdMedianMs ? `**${(p.siloMedianMs / p.containerdMedianMs).toFixed(2)}×** containerd's time` : ''} |`,
    p.containerdMs && p.containerdMedianMs ? `| ${r.containerdVersion ?? 'containerd'} (CRI plugin, runc, CNI bridge) | ${p.containerdMedianMs.toFixed(1)} ms | ${spread(p.containerdMs)} ms | 1 |` : '| containerd | n/a (not installed) | | |',
    '<!-- cri:end -->',
  ];
  return lines.join('\n');
}

/** BENCHMARKS.md with its CRI section (between markers) replaced or appended. */
export function withCriSection(md: string, section: string): string {
  const start = md.indexOf('<!-- cri:start -->');
  const end = md.indexOf('<!-- cri:end -->');
  if (start >= 0 && end > start) return md.slice(0, start) + section + md.slice(end + '<!-- cri:end -->'.length);
  return `${md.trimEnd()}\n\n${section}\n`;
}
