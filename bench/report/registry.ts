// The registry section of BENCHMARKS.md, from bench/results/registry.json alone (written by `npm run bench:registry`).

import type { Summary } from '../lib/stats.js';

export interface RegistryResults {
  date: string;
  compressedBytes: number;
  layers: number;
  reps: number;
  rows: Record<string, { pull?: Summary; push?: Summary; pullCpu?: Summary; na?: string }>;
  /** The machine's 1-minute load average when the measuring began and ended. */
  loadAverage?: [number, number];
}

const mbps = (s: Summary | undefined) => (s ? `${s.median.toFixed(1)} (${s.q1.toFixed(1)}–${s.q3.toFixed(1)})` : 'n/a');
const cpu = (s: Summary | undefined) => (s ? s.median.toFixed(2) : 'n/a');

export function registrySection(r: RegistryResults): string {
  const s = r.rows.silo;
  const d = r.rows.docker;
  const ratio = (k: 'pull' | 'push') => (s?.[k] && d?.[k] ? `**${(s[k]!.median / d[k]!.median).toFixed(2)}×**` : 'n/a');
  return [
    '<!-- registry:start -->',
    '## Registry pull and push (`npm run bench:registry`)',
    '',
    `Run ${r.date.slice(0, 10)}. A ${r.layers}-layer image (${(r.compressedBytes / 1e6).toFixed(0)} MB gzip'd, text-like content) in Debian's`,
    'docker-registry on loopback (plain HTTP); both engines driven by the docker CLI, repetitions interleaved. MB/s are',
    'compressed bytes per second of the CLI command (median, IQR). Pull: the image is removed between repetitions, so',
    'every blob is fetched, verified and unpacked again. Push: to an empty registry each time, so every blob is uploaded',
    '(dockerd compresses its layers again; Silo sends the blobs it pulled). Pull CPU-s: CPU seconds the engine used per',
    "pull (Silo's daemon with its download worker; dockerd with its containerd), median: less swayed by the machine's load.",
    ...(r.loadAverage ? [`The machine's load average was ${r.loadAverage[0].toFixed(1)} at the start and ${r.loadAverage[1].toFixed(1)} at the end (its CPU count: see the top of this file).`] : []),
    '',
    '| engine | pull MB/s | pull CPU-s | push MB/s |',
    '|---|---|---|---|',
    `| Silo | ${mbps(s?.pull)} | ${cpu(s?.pullCpu)} | ${mbps(s?.push)} |`,
    `| dockerd | ${d?.na ? `n/a (${d.na})` : mbps(d?.pull)} | ${d?.na ? '' : cpu(d?.pullCpu)} | ${d?.na ? '' : mbps(d?.push)} |`,
    `| Silo / dockerd | ${ratio('pull')} | ${s?.pullCpu && d?.pullCpu ? `${(s.pullCpu.median / d.pullCpu.median).toFixed(2)}×` : 'n/a'} | ${ratio('push')} |`,
    '<!-- registry:end -->',
  ].join('\n');
}

/** BENCHMARKS.md with its registry section (between markers) replaced or appended. */
export function withRegistrySection(md: string, section: string): string {
  const start = md.indexOf('<!-- registry:start -->');
  const end = md.indexOf('<!-- registry:end -->');
  if (start >= 0 && end > start) return md.slice(0, start) + section + md.slice(end + '<!-- registry:end -->'.length);
  return md.replace(/\n*$/, '\n\n') + section + '\n';
}
