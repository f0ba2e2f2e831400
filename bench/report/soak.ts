// The load soak's section of BENCHMARKS.md, from bench/results/soak.json alone (written by `npm run bench:soak`).

export interface SoakResults {
  date: string;
  clients: number;
  cycles: number;
  killEvery: number;
  printMB: number;
  lifecycles: number;
  seconds: number;
  p50ms: number;
  p90ms: number;
  maxms: number;
  kills: number;
  askedAgain: number;
  errors: number;
  lost: number;
  /** Counted by the soak itself, by kind. */
  leaked: Record<string, number>;
  doctorExit: number;
  /** The printer's log on disk at most, bytes, and its cap (max-size × max-file). */
  logMost: number;
  logCap: number;
  /** Per daemon life: first, last and highest RSS sample, bytes. */
  rss: { life: number; first: number; last: number; highest: number }[];
  loadAverage: [number, number];
}

const mb = (b: number) => (b / 1048576).toFixed(1);

export function soakSection(r: SoakResults): string {
  const leaked = Object.values(r.leaked).reduce((a, b) => a + b, 0);
  const hi = Math.max(...r.rss.map((x) => x.highest));
  return [
    '<!-- soak:start -->',
    '## Load soak (`npm run bench:soak`)',
    '',
    `Run ${r.date.slice(0, 10)}: ${r.clients} clients × ${r.cycles} lifecycles through the Docker API (create with a published port, start,`,
    'a request through the port, exec, stop, remove), a container printing logs all the while (json-file, max-size 10m,',
    `max-file 3), a SIGKILL of the daemon every ${r.killEvery} lifecycles, each client asking again what a kill cut off. Lost and`,
    'leaked are counted by the soak itself (system records, runtimes, Docker metadata, scratch images, intents; then, with the',
    'daemon stopped, mounts, loop devices, cgroups, monitors, veths, namespaces and nftables elements), `silo doctor` beside.',
    `The machine's load average was ${r.loadAverage[0].toFixed(1)} at the start and ${r.loadAverage[1].toFixed(1)} at the end (2 cores, shared).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| lifecycles | ${r.lifecycles} in ${r.seconds.toFixed(0)} s (${(r.lifecycles / r.seconds).toFixed(2)}/s); p50 ${r.p50ms} ms, p90 ${r.p90ms} ms, max ${r.maxms} ms |`,
    `| daemon SIGKILLs | ${r.kills} (${r.askedAgain} requests asked again) |`,
    `| errors / lost / leaked | ${r.errors} / ${r.lost} / ${leaked} (${Object.entries(r.leaked).map(([k, v]) => `${k} ${v}`).join(', ')}); silo doctor exit ${r.doctorExit} |`,
    `| printer's log on disk | at most ${mb(r.logMost)} MiB for ${r.printMB} MB printed (cap ${mb(r.logCap)} MiB) |`,
    `| daemon RSS per life | ${rssLives(r.rss)}; highest ${mb(hi)} MB |`,
    '<!-- soak:end -->',
  ].join('\n');
}

export function withSoakSection(md: string, section: string): string {
  const start = md.indexOf('<!-- soak:start -->');
  const end = md.indexOf('<!-- soak:end -->');
  if (start >= 0 && end > start) return md.slice(0, start) + section + md.slice(end + '<!-- soak:end -->'.length);
  return md.replace(/\n*$/, '\n\n') + section + '\n';
}

/** Each life's first → last (highest) RSS; with many lives, the first and last two and the range of the others. */
function rssLives(lives: { first: number; last: number; highest: number }[]): string {
  const one = (x: { first: number; last: number; highest: number }) => `${mb(x.first)} → ${mb(x.last)} (≤ ${mb(x.highest)})`;
  if (lives.length <= 6) return `${lives.map(one).join('; ')} MB`;
  const mid = lives.slice(2, -2);
  const span = (f: (x: (typeof lives)[number]) => number) => `${mb(Math.min(...mid.map(f)))}–${mb(Math.max(...mid.map(f)))}`;
  return `${lives.slice(0, 2).map(one).join('; ')}; … ${mid.length} lives: ${span((x) => x.first)} → ${span((x) => x.last)} (≤ ${span((x) => x.highest)}) …; ${lives.slice(-2).map(one).join('; ')} MB (${lives.length} lives)`;
}
