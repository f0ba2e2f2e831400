// Stress, long: C concurrent clients × N lifecycles each (create with a published port on a port of its own, start, a
// request through the port, exec, stop, remove) through the native API against a daemon of its own (the e2e harness'
// TestDaemon: its own state dir, run dir, cgroup parent and network prefix). Reports errors, leaks (the harness' check
// and `silo doctor`), lifecycle times, and the daemon's RSS over time — flat or not. Run as root:
//   npx tsc -p tsconfig.json && node dist/bench/stress.js [cycles=200] [clients=8]
// Exit status 1 when there were errors or leaks.

import { randomInt } from 'node:crypto';
import { TestDaemon, leaks } from '../test/e2e/harness.js';
import { percentile, rssGrowth, runStress } from '../test/e2e/stress-load.js';

const cycles = Number(process.argv[2] ?? 200);
const clients = Number(process.argv[3] ?? 8);
const mb = (b: number) => (b / 1048576).toFixed(1);

const d = new TestDaemon();
await d.start();
let failed = false;
try {
  const total = clients * cycles;
  console.log(`stress: ${clients} clients × ${cycles} lifecycles against a daemon tagged ${d.tag}`);
  let shown = 0;
  const r = await runStress({
    socket: d.socket,
    daemonPid: d.pid!,
    clients,
    cycles,
    portBase: randomInt(20000, 60000 - total),
    sampleMs: 2000,
    onProgress: (done) => {
      if (done - shown >= total / 20 || done === total) {
        shown = done;
        process.stdout.write(`  ${done}/${total}\n`);
      }
    },
  });

  console.log(`\nlifecycles: ${r.lifecycles} in ${(r.wallMs / 1000).toFixed(1)} s (${(r.lifecycles / (r.wallMs / 1000)).toFixed(2)}/s)`);
  console.log(`lifecycle ms: p50 ${percentile(r.durations, 50).toFixed(0)}  p90 ${percentile(r.durations, 90).toFixed(0)}  p99 ${percentile(r.durations, 99).toFixed(0)}  max ${Math.max(...r.durations).toFixed(0)}`);
  console.log(`errors: ${r.errors.length}`);
  for (const e of r.errors.slice(0, 20)) console.log(`  ${e}`);

  const left = (await d.silo(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  const leaked = leaks(d.tag).filter((l) => !(l.startsWith('link') && l.includes(':br:')) && !l.startsWith('nft'));
  const doctor = await d.silo(['doctor']);
  console.log(`containers left: ${left.length}; leaks: ${leaked.length}; silo doctor: exit ${doctor.code}`);
  for (const l of leaked) console.log(`  ${l}`);
  if (doctor.code !== 0) console.log(doctor.stdout.trimEnd());

  // RSS over time: one row per tenth of the run, then the first-quarter vs last-quarter medians.
  console.log('\ndaemon RSS over time:');
  const step = Math.max(1, Math.floor(r.rss.length / 10));
  for (let i = 0; i < r.rss.length; i += step) console.log(`  ${(r.rss[i][0] / 1000).toFixed(0).padStart(6)} s  ${mb(r.rss[i][1]).padStart(7)} MB`);
  const last = r.rss[r.rss.length - 1];
  console.log(`  ${(last[0] / 1000).toFixed(0).padStart(6)} s  ${mb(last[1]).padStart(7)} MB (end)`);
  const g = rssGrowth(r.rss);
  const flat = Math.abs(g.growth) < 0.1 * g.first;
  console.log(`RSS median first quarter ${mb(g.first)} MB → last quarter ${mb(g.last)} MB: ${g.growth >= 0 ? '+' : ''}${mb(g.growth)} MB (${flat ? 'flat' : 'NOT flat'})`);
  // The slope over the second half, once warm-up and the 5 minutes finished exec records are kept are behind us.
  const half = r.rss.filter(([t]) => t >= r.wallMs / 2);
  if (half.length > 1) {
    const perK = ((half[half.length - 1][1] - half[0][1]) / (r.lifecycles / 2)) * 1000;
    console.log(`RSS slope over the second half: ${perK >= 0 ? '+' : ''}${mb(perK)} MB per 1000 lifecycles`);
  }
  failed = r.errors.length > 0 || left.length > 0 || leaked.length > 0 || doctor.code !== 0;
} finally {
  const left = await d.teardown();
  if (left.length) {
    console.log(`after teardown: ${left.join('; ')}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
