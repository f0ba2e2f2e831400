// Stress, long: C concurrent clients × N lifecycles each (create with a published port on a port of its own, start, a
// request through the port, exec, stop, remove) through the native API against a daemon of its own (the e2e harness'
// TestDaemon: its own state dir, run dir, cgroup parent and network prefix). Reports errors, leaks (the harness' check
// and `silo doctor`), lifecycle times, the daemon's RSS over time, and its live heap (after a full GC, through the
// SILO_DEBUG_MEMORY probe) — flat or not. RSS alone cannot tell: it carries garbage not yet collected and pages V8 and
// malloc keep after a collection, so the verdict is the live heap's (the probe's full GCs, one per tenth of the run,
// are part of the run the RSS figures describe). Run as root:
//   npx tsc -p tsconfig.json && node dist/bench/stress.js [cycles=200] [clients=8]
// Exit status 1 when there were errors or leaks.

import { randomInt } from 'node:crypto';
import { TestDaemon, leaks } from '../test/e2e/harness.js';
import { percentile, rssGrowth, runStress, slope } from '../test/e2e/stress-load.js';

const cycles = Number(process.argv[2] ?? 200);
const clients = Number(process.argv[3] ?? 8);
const mb = (b: number) => (b / 1048576).toFixed(1);
const signed = (b: number) => `${b >= 0 ? '+' : ''}${(b / 1048576).toFixed(2)}`;

const d = new TestDaemon();
await d.start({ SILO_DEBUG_MEMORY: '1' });
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
    runDir: d.runDir,
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
  console.log(`RSS median first quarter ${mb(g.first)} MB → last quarter ${mb(g.last)} MB: ${signed(g.growth)} MB`);
  // Slopes over the second half, once warm-up (optimised code, pools) is behind us, fitted by least squares rather
  // than taken from two noisy points.
  const rssHalf = r.rss.filter(([t]) => t >= r.wallMs / 2);
  const rssPerK = slope(rssHalf) * (r.wallMs / r.lifecycles) * 1000;
  console.log(`RSS slope over the second half: ${signed(rssPerK)} MB per 1000 lifecycles`);

  console.log('\ndaemon after a full GC, by lifecycles done (MB):');
  console.log('    done  heap used   of it code  data  heap total  external      RSS');
  for (const h of r.heap) {
    console.log(`  ${String(h.done).padStart(6)}  ${mb(h.heapUsed).padStart(9)}  ${mb(h.code).padStart(11)}  ${mb(h.heapUsed - h.code).padStart(4)}  ${mb(h.heapTotal).padStart(10)}  ${mb(h.external).padStart(8)}  ${mb(h.rss).padStart(7)}`);
  }
  // The verdict is on the live data (heap used less compiled code): what a container, exec or connection left behind
  // would add to. Optimised code grows for a while as more functions get hot, bounded by the program's size.
  const half = r.heap.filter((h) => h.done >= r.lifecycles / 2);
  const dataPerK = slope(half.map((h): [number, number] => [h.done, h.heapUsed - h.code])) * 1000;
  const codePerK = slope(half.map((h): [number, number] => [h.done, h.code])) * 1000;
  // Flat: under 100 bytes kept a lifecycle — one small object per container would show.
  const flat = Math.abs(dataPerK) < 0.1 * 1048576;
  console.log(`live data slope over the second half: ${signed(dataPerK)} MB per 1000 lifecycles (${flat ? 'flat' : 'NOT flat'}); compiled code: ${signed(codePerK)} MB per 1000`);
  failed = r.errors.length > 0 || left.length > 0 || leaked.length > 0 || doctor.code !== 0;
} finally {
  const left = await d.teardown();
  if (left.length) {
    console.log(`after teardown: ${left.join('; ')}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
