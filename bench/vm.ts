// `node dist/bench/vm.js [--n N]`: VM isolation against process isolation and docker (a dockerd of the bench's own,
// env/docker-peer.ts, with the same busybox; its column is n/a, with the reason on stderr, when it cannot start), in
// one run on this machine:
//   1. utility VM start to the guest agent answering: cold boot vs template restore (QEMU + agent only);
//   2. `run --rm busybox true` end to end through the CLI: vm, process, docker;
//   3. host memory per idle container (PSS of QEMU, or of conmon + the container's processes): vm vs process, read 3 s
//      and a minute after the starts (the minute is what counts as idle: see idleMemory).
// Writes bench/results/vm.json and BENCHMARKS.md's VM section (`npm run bench:vm`) and prints a Markdown table. Everything it starts carries a silo-bench-vm-<rand> tag
// and is removed at the end. `--only memory` measures 3. alone (the same way, writing nothing) and prints where an
// idle VM's memory is, by kind of mapping; `--only run` measures the vm half of 2. with QEMU's CPU time: for A/B
// trials of QEMU's settings (docs/vm.md, "Host memory per idle VM").

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { vmSection, withVmSection, type VmResults } from './report/vm.js';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { findAssets, launch, paths, qemuAlive } from '../src/compute/vm/qemu.js';
import { restoreInto, Templates, templateState } from '../src/compute/vm/template.js';
import { Qmp } from '../src/compute/vm/qmp.js';
import { AgentChannel } from '../src/compute/vm/channel.js';
import { DEFAULT_BUILD_DIR } from '../src/compute/vm/index.js';
import { silentLogger } from '../src/common/log.js';
import { removeDaemonLeftovers } from './lib/daemon-dirs.js';
import { startDockerPeer } from './env/docker-peer.js';
import { DOCKER_CLI, type Dockerd } from './env/dockerd.js';
import { cleanupAll, cleanupOnSignals } from './lib/cleanup.js';
import { errText } from './lib/proc.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SILO = join(root, 'bin/silo');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
if (only !== undefined && only !== 'memory' && only !== 'run') throw new Error(`--only takes memory or run, not "${only}"`);
const n = process.argv.includes('--n') ? Number(process.argv[process.argv.indexOf('--n') + 1]) : 10;
const tag = `silo-bench-vm-${randomBytes(3).toString('hex')}`;
const stateDir = `/var/lib/${tag}`;
const runDir = `/run/${tag}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; out: string } {
  const r = spawnSync(process.execPath, [SILO, ...args], { env: { ...process.env, SILO_HOST: `unix://${runDir}/silo.sock`, ...env }, encoding: 'utf8' });
  return { code: r.status ?? 128, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** Proportional set size of a process (its share of pages it shares with others, e.g. a template's RAM), KiB. */
function pssKiB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function pidsWith(marker: string, comm?: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (comm && readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== comm) continue;
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The QEMU of the VM whose run dir is `<run>/vm/<dir>` (a container's, or a spare's `s-<hex>`). */
function qemuOf(dir: string): number[] {
  try {
    const pid = Number(readFileSync(`${runDir}/vm/${dir}/qemu.pid`, 'utf8').trim());
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'qemu-system-x86' ? [pid] : [];
  } catch {
    return [];
  }
}

/** Run dirs of the VMs of containers (not spares). */
const containerVmDirs = () => (existsSync(`${runDir}/vm`) ? readdirSync(`${runDir}/vm`).filter((e) => /^[0-9a-f]{16}$/.test(e)) : []);

function descendants(pid: number): number[] {
  const kids: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const ppid = Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === pid) kids.push(Number(p), ...descendants(Number(p)));
    } catch {
      /* gone */
    }
  }
  return kids;
}

async function vmStarts(): Promise<{ coldMs: number[]; restoreMs: number[] }> {
  const a = await findAssets(DEFAULT_BUILD_DIR);
  const dir = join(stateDir, 'bench-vm');
  mkdirSync(join(dir, 'run'), { recursive: true });
  const size = { memoryMiB: 128, cpus: 1 };
  const t = new Templates(join(dir, 'templates'), join(dir, 'run'), a, `${tag}-t`, silentLogger());
  await t.init();
  const tpl = await t.get(size);
  const coldMs: number[] = [];
  const restoreMs: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const kind of ['cold', 'restore'] as const) {
      const run = join(dir, 'run', `${kind}${i}`);
      mkdirSync(run, { recursive: true });
      const name = `${tag}-${kind}${i}`;
      const t0 = performance.now();
      let pid: number;
      if (kind === 'cold') pid = await launch(a, { name, dir: run, logFile: join(run, 'log'), exitFile: join(run, 'exit'), size });
      else {
        pid = await launch(a, { name, dir: run, logFile: join(run, 'log'), exitFile: join(run, 'exit'), size, ram: { path: join(tpl, 'ram'), share: false }, incoming: templateState(tpl) });
        const q = await Qmp.open(paths(run).qmp);
        await restoreInto(q);
        q.close();
      }
      const ch = await AgentChannel.open(paths(run).ctl, 60_000);
      (kind === 'cold' ? coldMs : restoreMs).push(performance.now() - t0);
      ch.close();
      process.kill(pid, 'SIGKILL');
      while (await qemuAlive(pid, name)) await sleep(10);
    }
  }
  return { coldMs, restoreMs };
}

function runRm(args: string[]): number[] {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = cli(['run', '--rm', ...args, 'busybox', 'true']);
    if (r.code !== 0) throw new Error(`run --rm ${args.join(' ')}: ${r.out}`);
    ms.push(performance.now() - t0);
  }
  return ms;
}

/**
 * `run --rm --isolation vm busybox true` n times, with the CPU time its QEMU used (utime + stime, sampled every 10 ms
 * until the run ends, so the last ≤ 10 ms of it may be missed): a figure the machine's load moves far less than the
 * wall time, since under TCG the guest's work is QEMU's CPU.
 */
async function runRmVm(): Promise<{ ms: number[]; cpuMs: number[] }> {
  const ms: number[] = [];
  const cpuMs: number[] = [];
  const ticks = (pid: number) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      return -1;
    }
  };
  for (let i = 0; i < n; i++) {
    const before = new Set(containerVmDirs());
    const t0 = performance.now();
    const p = spawn(process.execPath, [SILO, 'run', '--rm', '--isolation', 'vm', 'busybox', 'true'], { env: { ...process.env, SILO_HOST: `unix://${runDir}/silo.sock` }, stdio: 'ignore' });
    const done = new Promise<number>((r) => p.once('exit', (c) => r(c ?? 128)));
    let exited = false;
    void done.then(() => (exited = true));
    // QEMU forks when it daemonizes: its first process' CPU (the start) and its second's (the VM) are summed. Each is
    // looked for every 40 ms (a scan of /proc costs the machine too); their counters are cumulative. The second is
    // the one in the container's run dir; a spare's (docs/vm.md) counts from its launch and restore, before the run, but
    // its first process ended then and is not counted.
    const seen = new Map<number, number>();
    let pid: number | undefined;
    for (let k = 0; !exited; k++) {
      if (!pid && k % 4 === 0) pid = [...pidsWith(`${tag}-`, 'qemu-system-x86').filter((x) => !seen.has(x) && !isSpare(x)), ...containerVmDirs().filter((d) => !before.has(d)).flatMap(qemuOf)].find((x) => !seen.has(x));
      if (pid) {
        const t = ticks(pid);
        if (t < 0) pid = undefined;
        else seen.set(pid, Math.max(seen.get(pid) ?? 0, t));
      }
      await sleep(10);
    }
    const cpu = [...seen.values()].reduce((a, b) => a + b, 0);
    if ((await done) !== 0) throw new Error('run --rm --isolation vm failed');
    ms.push(performance.now() - t0);
    cpuMs.push(cpu);
  }
  return { ms, cpuMs };
}

/** A spare waiting (its -name says so; a claimed one's run dir is a container's, but its name stays). */
function isSpare(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${tag}-spare-`) && !containerVmDirs().some((d) => qemuOf(d)[0] === pid);
  } catch {
    return true;
  }
}

function dockerRunRm(docker: Dockerd | undefined): number[] | undefined {
  if (!docker) return undefined;
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = spawnSync(DOCKER_CLI, ['-H', `unix://${docker.socket}`, 'run', '--rm', 'busybox', 'true'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker run --rm: ${r.stderr}`);
    ms.push(performance.now() - t0);
  }
  return ms;
}

/** PSS of a process by kind of mapping (guest RAM, TCG's code cache and other anonymous memory, heap, libraries), KiB. */
function pssByKind(pid: number, into: Map<string, number>): void {
  let kind = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+\S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[2];
      kind = name.endsWith('/ram')
        ? 'guest RAM (template file)'
        : name.startsWith('/memfd:tcg-jit')
          ? "TCG's code cache (memfd: split-wx)"
          : name === '[heap]'
            ? 'heap'
            : name.startsWith('/')
              ? 'files (libraries, binary)'
              : name || 'anonymous (arenas, stacks; the TCG cache without split-wx)';
      continue;
    }
    const m = /^Pss:\s+(\d+)/.exec(line);
    if (m) into.set(kind, (into.get(kind) ?? 0) + Number(m[1]));
  }
}

type Mem = { pssMiB: number; rssMiB: number };

/** PSS (and RSS) per container of each isolation's `ids`, MiB; `byKind` gets the VMs' PSS by kind of mapping. */
function memoryOf(ids: string[], isolation: 'vm' | 'process', byKind?: Map<string, number>): Mem {
  let pss = 0;
  let rss = 0;
  for (const id of ids) {
    const pids = isolation === 'vm' ? qemuOf(id.slice(0, 16)) : pidsWith(id, 'conmon').flatMap((p) => [p, ...descendants(p)]);
    for (const p of pids) {
      pss += pssKiB(p);
      if (byKind) pssByKind(p, byKind);
      rss += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    }
  }
  return { pssMiB: pss / 1024 / ids.length, rssMiB: rss / 1024 / ids.length };
}

/** Time after the starts at which memory is read "idle": a VM's guest settles and its code cache is trimmed (jit.ts). */
const IDLE_MS = 60_000;

/**
 * `count` idle `busybox sleep` containers of each isolation, started together, their memory read 3 s after the starts
 * (just started) and after IDLE_MS (idle): a VM's guest still translates code for seconds after its start, and the
 * daemon gives back its code cache's dead part (jit.ts) only once the cache has been flushed, within about a minute.
 */
/** The spare waiting now (the idle containers' starts launched it), if one does. */
function spareMemory(): Mem | undefined {
  const dirs = existsSync(`${runDir}/vm`) ? readdirSync(`${runDir}/vm`).filter((e) => /^s-[0-9a-f]{12}$/.test(e)) : [];
  const pid = dirs.flatMap(qemuOf)[0];
  if (!pid) return undefined;
  return { pssMiB: pssKiB(pid) / 1024, rssMiB: Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024 };
}

async function idleMemory(isolations: ('vm' | 'process')[], count: number, byKind?: Map<string, number>): Promise<Record<'vm' | 'process', { started: Mem; idle: Mem } | undefined>> {
  const ids = new Map<'vm' | 'process', string[]>(isolations.map((i) => [i, []]));
  try {
    for (let i = 0; i < count; i++) {
      for (const iso of isolations) {
        const r = cli(['run', '-d', '--isolation', iso, 'busybox', 'sleep', '1000']);
        if (r.code !== 0) throw new Error(r.out);
        ids.get(iso)!.push(r.out.trim());
      }
    }
    const t0 = performance.now();
    await sleep(3000);
    const started = new Map(isolations.map((i) => [i, memoryOf(ids.get(i)!, i)]));
    await sleep(Math.max(0, IDLE_MS - (performance.now() - t0)));
    const at = (i: 'vm' | 'process') => (ids.has(i) ? { started: started.get(i)!, idle: memoryOf(ids.get(i)!, i, i === 'vm' ? byKind : undefined) } : undefined);
    return { vm: at('vm'), process: at('process') };
  } finally {
    const all = [...ids.values()].flat();
    if (all.length) cli(['rm', '-f', ...all]);
  }
}

async function main(): Promise<void> {
  cleanupOnSignals();
  const daemon = spawn(process.execPath, [SILO, 'daemon', '--state-dir', stateDir, '--run-dir', runDir, '--cgroup-parent', tag, '--log-level', 'error'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 200 && !existsSync(`${runDir}/silo.sock`); i++) await sleep(50);
    await sleep(500);
    if (only === 'memory') {
      cli(['run', '--rm', '--isolation', 'vm', 'busybox', 'true']); // makes the daemon's template
      const kinds = new Map<string, number>();
      const mem = (await idleMemory(['vm'], 4, kinds)).vm!;
      console.log(`host memory per vm container, PSS (RSS): ${mem.started.pssMiB.toFixed(1)} MiB (${mem.started.rssMiB.toFixed(1)}) just started, ${mem.idle.pssMiB.toFixed(1)} MiB (${mem.idle.rssMiB.toFixed(1)}) idle; load average ${loadavg()[0].toFixed(1)}`);
      for (const [k, v] of [...kinds].filter(([, v]) => v >= 50 * 4).sort((a, b) => b[1] - a[1])) console.log(`  ${(v / 1024 / 4).toFixed(1)} MiB  ${k}`);
      return;
    }
    if (only === 'run') {
      cli(['run', '--rm', '--isolation', 'vm', 'busybox', 'true']); // makes the daemon's template
      const r = await runRmVm();
      console.log(`run --rm --isolation vm busybox true: ${median(r.ms).toFixed(0)} ms, QEMU CPU ${median(r.cpuMs).toFixed(0)} ms (median of ${n}; all: ${r.cpuMs.join(' ')}), load average ${loadavg()[0].toFixed(1)}`);
      return;
    }
    process.stderr.write('vm starts: cold boot vs template restore\n');
    const starts = await vmStarts();
    process.stderr.write('run --rm\n');
    cli(['run', '--rm', '--isolation', 'vm', 'busybox', 'true']); // makes the daemon's template
    const { ms: vmRun, cpuMs: vmCpu } = await runRmVm();
    const procRun = runRm([]);
    let docker: Dockerd | undefined;
    try {
      docker = await startDockerPeer(`${runDir}/docker.sock`, (m) => process.stderr.write(`${m}\n`));
    } catch (e) {
      process.stderr.write(`docker: n/a (${errText(e)})\n`);
    }
    const dockerRun = dockerRunRm(docker);
    await cleanupAll(); // dockerd is not needed for the rest: it would only load the machine
    process.stderr.write('idle memory\n');
    const mem = await idleMemory(['vm', 'process'], 4);
    const spare = spareMemory();
    const memVm = mem.vm!;
    const memProc = mem.process!;
    const assets = await findAssets(DEFAULT_BUILD_DIR);
    const res: VmResults = {
      when: new Date().toISOString(),
      n,
      // The machine is shared: its load while measuring says how far the figures are from a quiet host's.
      loadAverage1m: loadavg()[0],
      accel: assets.accel,
      tcgCacheMiB: assets.accel === 'tcg' ? assets.tcgCacheMiB : undefined,
      startMs: { coldBoot: median(starts.coldMs), templateRestore: median(starts.restoreMs), ratio: median(starts.coldMs) / median(starts.restoreMs) },
      runRmMs: { vm: median(vmRun), process: median(procRun), docker: dockerRun ? median(dockerRun) : null },
      vmRunQemuCpuMs: median(vmCpu),
      idleMemoryMiBPerContainer: { vm: memVm.idle, process: memProc.idle },
      startedMemoryMiBPerContainer: { vm: memVm.started, process: memProc.started },
      ...(spare ? { spareMemoryMiB: spare } : {}),
    };
    mkdirSync(join(root, 'bench/results'), { recursive: true });
    writeFileSync(join(root, 'bench/results/vm.json'), JSON.stringify(res, null, 2) + '\n');
    const md = join(root, 'BENCHMARKS.md');
    writeFileSync(md, withVmSection(existsSync(md) ? readFileSync(md, 'utf8') : '# Benchmarks\n', vmSection(res)));
    const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(0));
    console.log(`| measure (${res.accel.toUpperCase()}, median of ${n}, load average ${res.loadAverage1m.toFixed(1)}) | value |`);
    console.log('|---|---|');
    console.log(`| VM start to agent: cold boot | ${f(res.startMs.coldBoot)} ms |`);
    console.log(`| VM start to agent: template restore | ${f(res.startMs.templateRestore)} ms (${res.startMs.ratio.toFixed(1)}× faster) |`);
    console.log(`| run --rm busybox true: vm / process / docker | ${f(res.runRmMs.vm)} / ${f(res.runRmMs.process)} / ${f(res.runRmMs.docker)} ms |`);
    console.log(`| QEMU CPU time per vm run --rm | ${f(res.vmRunQemuCpuMs ?? null)} ms |`);
    for (const [name, m] of [['vm', memVm], ['process', memProc]] as const) {
      console.log(`| host memory per container, PSS (RSS): ${name}, 3 s / ${IDLE_MS / 1000} s after start | ${m.started.pssMiB.toFixed(1)} MiB (${m.started.rssMiB.toFixed(1)}) / ${m.idle.pssMiB.toFixed(1)} MiB (${m.idle.rssMiB.toFixed(1)}) |`);
    }
  } finally {
    await cleanupAll();
    const ps = cli(['ps', '-aq']).out.split('\n').filter((x) => /^[0-9a-f]{12,}$/.test(x));
    if (ps.length) cli(['rm', '-f', ...ps]);
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    for (const p of pidsWith(tag, 'qemu-system-x86')) process.kill(p, 'SIGKILL');
    await removeDaemonLeftovers(tag, stateDir, runDir);
  }
}

await main();
