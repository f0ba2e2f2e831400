// Load soak through the Docker API: C clients × N lifecycles each (create with a published port, start, a request
// through the port, exec, stop, remove), a container printing logs all the while (rotated by its --log-opt), and a
// SIGKILL of the daemon after every K lifecycles (then it is started again). Clients ride out the kills: a request the
// daemon could not answer is asked again once it is back, each step idempotent by the container's name (a create
// that was rolled back is made again, a start or stop already done is 304, a remove already done is 404).
// At the end it counts on its own — not through `silo doctor`, whose verdict is printed beside — what is lost
// (a container a client made that vanished before its remove) and what is leaked: state files (system records,
// runtimes, Docker metadata, scratch images, intents) while the daemon runs, then, once it stopped, every kernel
// object and process carrying the daemon's tag (mounts, loop devices, cgroups, monitors, veths, namespaces) and the
// elements of its nftables table beside those it had before the run. RSS is sampled per daemon life.
// Run as root:
//   npx tsc -p tsconfig.json && node dist/bench/soak.js [cycles=25] [clients=8] [killEvery=100] [printMB=100] [--write]
// (`npm run bench:soak` passes --write: bench/results/soak.json and BENCHMARKS.md's soak section.)
// Exit status 1 when anything was lost, leaked or failed.

import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestDaemon, leaks, sleep } from '../test/e2e/harness.js';
import { soakSection, withSoakSection, type SoakResults } from './report/soak.js';
import { request, rssOf, type Answer } from '../test/e2e/native-client.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const write = process.argv.includes('--write');
const cycles = Number(args[0] ?? 25);
const clients = Number(args[1] ?? 8);
const killEvery = Number(args[2] ?? 100);
const printMB = Number(args[3] ?? 100);
const MiB = 1024 * 1024;
const mb = (b: number) => (b / MiB).toFixed(1);

const d = new TestDaemon();
const dock = () => `${d.runDir}/docker.sock`;
const INIT = ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /etc & wait'];
const LINE = 'x'.repeat(100);
// 2000 lines of 101 bytes per burst, ten bursts a second at most: ≈2 MB/s until printMB are printed.
const PRINTER = `n=0; while [ $n -lt ${Math.ceil((printMB * MiB) / (2000 * 101))} ]; do yes ${LINE} | head -n 2000; n=$((n+1)); sleep 0.1; done; echo printed-all; sleep 100000`;

class Transient extends Error {}
let transients = 0;

/** A Docker API call; a daemon that is down or went down mid-request is Transient. */
async function api(method: string, path: string, json?: unknown): Promise<Answer> {
  try {
    const r = await request(dock(), method, path, { ...(json !== undefined ? { json } : {}), timeoutMs: 60_000 });
    // A request cut by the kill can come back as a 5xx from a daemon that is going away.
    if (r.status >= 500 && !d.pid) throw new Transient(`${method} ${path}: ${r.status}`);
    return r;
  } catch (e) {
    if (e instanceof Transient) throw e;
    throw new Transient(`${method} ${path}: ${(e as Error).message}`);
  }
}

async function daemonUp(): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (d.pid && (await request(dock(), 'GET', '/_ping', { timeoutMs: 2000 }).then((r) => r.status === 200, () => false))) return;
    await sleep(100);
  }
  throw new Error('the daemon did not come back');
}

/** Run a step until it is done, riding out daemon kills; its own errors are real. */
async function step<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof Transient) || attempt >= 30) throw e;
      transients++;
      await daemonUp();
    }
  }
}

function expect(r: Answer, ok: number[], what: string): Answer {
  if (!ok.includes(r.status)) throw new Error(`${what}: ${r.status} ${r.body.toString().trim().slice(0, 200)}`);
  return r;
}

async function throughPort(port: number): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/hostname', agent: false, timeout: 2000 }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
      return;
    } catch (e) {
      if (i >= 100) throw new Error(`port ${port}: ${(e as Error).message}`);
      await sleep(100);
    }
  }
}

const lost: string[] = [];
const errors: string[] = [];

async function lifecycle(name: string, port: number): Promise<void> {
  // Create: a create the kill interrupted is either there (by its name) or rolled back, then made again.
  await step(async () => {
    const r = await api('POST', `/containers/create?name=${name}`, {
      Image: 'busybox', Cmd: INIT, ExposedPorts: { '80/tcp': {} },
      HostConfig: { PortBindings: { '80/tcp': [{ HostPort: String(port) }] } },
    });
    if (r.status === 409) return;
    expect(r, [201], 'create');
  });
  const present = async (what: string) => {
    const r = await api('GET', `/containers/${name}/json`);
    if (r.status === 404) {
      lost.push(`${name} (${what})`);
      throw new Error(`${name} was lost before ${what}`);
    }
    return expect(r, [200], 'inspect').json as { State: { Running: boolean } };
  };
  await step(async () => {
    const r = await api('POST', `/containers/${name}/start`);
    if (r.status === 404) await present('start');
    expect(r, [204, 304], 'start');
  });
  await step(async () => {
    // A kill between start and here leaves it running (adopted); if it is not, that is a lie to find.
    const s = await present('the request');
    if (!s.State.Running) throw new Error(`${name} is not running after its start`);
    try {
      await throughPort(port);
    } catch (e) {
      if (!d.pid) throw new Transient((e as Error).message);
      throw e;
    }
  });
  await step(async () => {
    const x = expect(await api('POST', `/containers/${name}/exec`, { Cmd: ['echo', name], AttachStdout: true }), [201], 'exec create').json as { Id: string };
    const out = expect(await api('POST', `/exec/${x.Id}/start`, { Detach: false, Tty: false }), [200, 101], 'exec start');
    const info = expect(await api('GET', `/exec/${x.Id}/json`), [200], 'exec inspect').json as { ExitCode: number | null };
    if (info.ExitCode !== 0 || !out.body.includes(Buffer.from(`${name}\n`))) throw new Error(`exec: exit ${info.ExitCode}, output ${JSON.stringify(out.body.toString('latin1'))}`);
  });
  await step(async () => {
    const r = await api('POST', `/containers/${name}/stop?t=5`);
    if (r.status === 404) await present('stop');
    expect(r, [204, 304], 'stop');
  });
  await step(async () => {
    const r = await api('DELETE', `/containers/${name}`);
    expect(r, [204, 404], 'remove');
  });
}

const leftFiles: string[] = [];
/** Entries of a directory that exist (0 when it does not), noted by name. */
const entries = (dir: string, keep: (n: string) => boolean = () => true) => {
  const xs = existsSync(dir) ? readdirSync(dir).filter(keep) : [];
  leftFiles.push(...xs.map((x) => `${dir}/${x}`));
  return xs.length;
};

function stateFiles(): Record<string, number> {
  const s = d.stateDir;
  return {
    'system records': entries(`${s}/systems`, (n) => n.endsWith('.json')),
    runtimes: entries(`${s}/runtime`) + entries(`${d.runDir}/runtime/b`) + entries(`${d.runDir}/runtime/x`),
    'docker metadata': entries(`${s}/docker/containers`),
    'scratch images': entries(`${s}/storage/scratch`),
    intents: entries(`${s}/intents`),
  };
}

/** Elements of the daemon's nftables table (sets and maps), by a JSON listing. */
function nftElements(): number {
  try {
    const j = JSON.parse(execFileSync('nft', ['-j', 'list', 'table', 'inet', d.tag], { encoding: 'utf8' })) as { nftables: Record<string, { elem?: unknown[] }>[] };
    return j.nftables.reduce((n, o) => n + (o.set?.elem?.length ?? 0) + (o.map?.elem?.length ?? 0), 0);
  } catch {
    return 0;
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const load0 = loadavg()[0];
await d.start();
let failed = false;
try {
  const total = clients * cycles;
  const portBase = randomInt(20000, 60000 - total);
  console.log(`soak: ${clients} clients × ${cycles} lifecycles through the Docker API, a SIGKILL of the daemon every ${killEvery}, a container printing ${printMB} MB; daemon tagged ${d.tag}`);
  const nft0 = nftElements();
  expect(await api('POST', '/containers/create?name=soak-printer', {
    Image: 'busybox', Cmd: ['sh', '-c', PRINTER], HostConfig: { LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } } },
  }), [201], 'printer create');
  expect(await api('POST', '/containers/soak-printer/start'), [204], 'printer start');
  const printerId = (expect(await api('GET', '/containers/soak-printer/json'), [200], 'printer').json as { Id: string }).Id;
  const logDir = `${d.stateDir}/runtime/${printerId}`;
  let logMost = 0;

  // RSS per daemon life: [life, seconds, bytes]; the log's size on disk alongside.
  const t0 = performance.now();
  const rss: [number, number, number][] = [];
  let life = 0;
  const sampler = setInterval(() => {
    const pid = d.pid;
    if (pid) rssOf(pid).then((b) => rss.push([life, (performance.now() - t0) / 1000, b]), () => {});
    // Every name the log's files have (rotation holds them by second names too), each inode counted once.
    const files = new Map<number, number>();
    for (const f of existsSync(logDir) ? readdirSync(logDir) : []) {
      const st = f.startsWith('ctr.log') ? statSync(`${logDir}/${f}`, { throwIfNoEntry: false }) : undefined;
      if (st) files.set(st.ino, st.size);
    }
    logMost = Math.max(logMost, [...files.values()].reduce((a, b) => a + b, 0));
  }, 500);

  let done = 0;
  let kills = 0;
  let killing: Promise<void> = Promise.resolve();
  const durations: number[] = [];
  const client = async (c: number) => {
    for (let i = 0; i < cycles; i++) {
      const name = `soak-${c}-${i}`;
      const t = performance.now();
      try {
        await lifecycle(name, portBase + c * cycles + i);
      } catch (e) {
        errors.push(`${name}: ${(e as Error).message}`);
        await api('DELETE', `/containers/${name}?force=1`).catch(() => {});
      }
      durations.push(performance.now() - t);
      done++;
      if (done % Math.max(1, Math.floor(total / 10)) === 0) console.log(`  ${done}/${total}  (${kills} kills, ${transients} requests asked again)`);
      if (Math.floor(done / killEvery) > kills && done < total) {
        kills++;
        killing = killing.then(async () => {
          await d.kill();
          await d.start();
          life++;
        });
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  await killing;
  await daemonUp();
  clearInterval(sampler);
  const wall = (performance.now() - t0) / 1000;

  const printer = expect(await api('GET', '/containers/soak-printer/json'), [200], 'printer').json as { State: { Running: boolean } };
  const tail = expect(await api('GET', '/containers/soak-printer/logs?stdout=1&tail=5'), [200], 'printer logs').body;
  const printerOk = printer.State.Running && tail.includes(Buffer.from(LINE));
  expect(await api('DELETE', '/containers/soak-printer?force=1'), [204], 'printer remove');

  const sorted = [...durations].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(0);
  console.log(`\nlifecycles: ${done} in ${wall.toFixed(1)} s (${(done / wall).toFixed(2)}/s); ms p50 ${pct(50)} p90 ${pct(90)} max ${pct(100)}`);
  console.log(`daemon SIGKILLs: ${kills}; requests asked again after a kill: ${transients}`);
  console.log(`errors: ${errors.length}`);
  for (const e of errors.slice(0, 20)) console.log(`  ${e}`);
  console.log(`lost: ${lost.length}${lost.length ? ` (${lost.join(', ')})` : ''}`);
  console.log(`printer: ${printer.State.Running ? 'running' : 'NOT running'}, its log at most ${mb(logMost)} MiB on disk (cap 3 × 10 MiB), tail ${printerOk ? 'read' : 'NOT read'}`);

  // Leaks, counted here: state files while the daemon runs, kernel objects once it stopped.
  // Docker's metadata of a removed container goes just after the remove answers (on its destroy event): a moment.
  let files = stateFiles();
  for (let i = 0; i < 30 && Object.values(files).some((n) => n > 0); i++) {
    await sleep(100);
    leftFiles.length = 0;
    files = stateFiles();
  }
  const doctor = await d.silo(['doctor']);
  const left = (await d.silo(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  await d.stop();
  const kernel = leaks(d.tag).filter((l) => !(l.startsWith('link') && l.includes(':br:')) && !l.startsWith('nft'));
  const nft1 = nftElements();
  const leaked = Object.values(files).reduce((a, b) => a + b, 0) + kernel.length + Math.max(0, nft1 - nft0) + left.length;
  console.log(`leaked: ${leaked} — containers ${left.length}; ${Object.entries(files).map(([k, v]) => `${k} ${v}`).join(', ')}; kernel objects and processes ${kernel.length}; nft elements ${nft1} (${nft0} before the run)`);
  for (const k of [...leftFiles, ...kernel]) console.log(`  ${k}`);
  console.log(`silo doctor: exit ${doctor.code}${doctor.code ? `\n${doctor.stdout.trimEnd()}` : ''}`);

  console.log('\ndaemon RSS by life (first, last and highest sample):');
  for (let l = 0; l <= life; l++) {
    const xs = rss.filter((r) => r[0] === l);
    if (!xs.length) continue;
    const hi = Math.max(...xs.map((r) => r[2]));
    console.log(`  life ${l}: ${mb(xs[0][2])} → ${mb(xs[xs.length - 1][2])} MB over ${(xs[xs.length - 1][1] - xs[0][1]).toFixed(0)} s, highest ${mb(hi)} MB`);
  }
  const highest = Math.max(...rss.map((r) => r[2]));
  console.log(`highest RSS: ${mb(highest)} MB`);
  if (write) {
    const lives = Array.from({ length: life + 1 }, (_, l) => rss.filter((r) => r[0] === l)).filter((xs) => xs.length);
    const results: SoakResults = {
      date: new Date().toISOString(), clients, cycles, killEvery, printMB, lifecycles: done, seconds: wall,
      p50ms: Number(pct(50)), p90ms: Number(pct(90)), maxms: Number(pct(100)), kills, askedAgain: transients,
      errors: errors.length, lost: lost.length,
      leaked: { containers: left.length, ...files, 'kernel objects and processes': kernel.length, 'nft elements': Math.max(0, nft1 - nft0) },
      doctorExit: doctor.code ?? -1, logMost, logCap: 30 * MiB,
      rss: lives.map((xs) => ({ life: xs[0][0], first: xs[0][2], last: xs[xs.length - 1][2], highest: Math.max(...xs.map((r) => r[2])) })),
      loadAverage: [load0, loadavg()[0]],
    };
    await mkdir(join(root, 'bench/results'), { recursive: true });
    await writeFile(join(root, 'bench/results/soak.json'), JSON.stringify(results, null, 2) + '\n');
    const md = join(root, 'BENCHMARKS.md');
    await writeFile(md, withSoakSection(await readFile(md, 'utf8').catch(() => '# Benchmarks\n'), soakSection(results)));
    console.log('wrote bench/results/soak.json and the soak section of BENCHMARKS.md');
  }
  failed = errors.length > 0 || lost.length > 0 || leaked > 0 || !printerOk || doctor.code !== 0;
} finally {
  await d.teardown().catch(() => {});
}
process.exit(failed ? 1 : 0);
