// `node dist/bench/run.js [--quick [--write]] [--n N]`: Silo against docker, podman and bare runc on this machine, in one run
// (issue 6). Installs and starts the peers in temporary dirs, measures, tears everything down, writes the raw results
// (bench/results/latest.json) and BENCHMARKS.md generated from them. --quick is a smoke run: small counts, results to
// the temp dir, the committed files untouched (unless --write: for a machine too busy for the full run's time).

import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { engines, probe } from './cases/engines.js';
import { imageLoad } from './cases/imageload.js';
import { latency } from './cases/latency.js';
import { idleRss, memoryAt, type MemoryTarget } from './cases/memory.js';
import { networking } from './cases/network-run.js';
import { policyScaling } from './cases/policy.js';
import { restartTimes } from './cases/restart.js';
import { throughput } from './cases/throughput.js';
import { DOCKER_CLI } from './env/dockerd.js';
import { installPeers } from './env/install.js';
import { leaks } from './env/leaks.js';
import { machine, versions } from './env/machine.js';
import { makeArchive } from './lib/archive.js';
import { cleanupAll, cleanupOnSignals } from './lib/cleanup.js';
import { NativeClient } from './lib/native.js';
import { errText, sleep } from './lib/proc.js';
import { rssKiB, rssSplitKiB } from './lib/procfs.js';
import { renderMarkdown } from './report/markdown.js';
import { criSection, withCriSection, type CriResults } from './report/cri.js';
import { registrySection, withRegistrySection, type RegistryResults } from './report/registry.js';
import { soakSection, withSoakSection, type SoakResults } from './report/soak.js';
import { vmSection, withVmSection, type VmResults } from './report/vm.js';
import type { BenchConfig, Results } from './report/types.js';
import { newTag, setup, type Env } from './setup.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = resolve(here, '../..');
const SILO_BIN = join(root, 'bin/silo');

function config(argv: string[]): BenchConfig {
  const quick = argv.includes('--quick');
  const i = argv.indexOf('--n');
  return {
    quick,
    n: i >= 0 ? Number(argv[i + 1]) : quick ? 5 : 30,
    throughputCount: quick ? 16 : 48,
    throughputReps: quick ? 1 : 2,
    concurrency: 8,
    memoryContainers: quick ? 10 : 50,
    networkRounds: quick ? 1 : 3,
    networkSeconds: quick ? 2 : 4,
    imageReps: quick ? 1 : 3,
    policyCount: quick ? 100 : 1000,
    restartReps: quick ? 1 : 3,
  };
}

const t0 = performance.now();
const log = (m: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);

/** RSS of an idle bare `node`: what any Node.js daemon costs before its first line of code. */
async function nodeBaselineMB(): Promise<number> {
  const p = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
  await sleep(1500);
  const kib = rssKiB(p.pid!);
  p.kill('SIGKILL');
  return kib / 1024;
}

function memoryTargets(env: Env, e: ReturnType<typeof engines>): MemoryTarget[] {
  const t: MemoryTarget[] = [
    { engine: e.siloCli, daemonPids: async () => [['silo daemon', env.silo.pid()]], monitorComms: ['conmon'], markers: [`/run/${env.tag}/`, `/var/lib/${env.tag}/`] },
  ];
  if (env.docker) {
    t.push({
      engine: e.docker,
      daemonPids: async () => {
        const c = await env.docker!.containerdPid();
        return [['dockerd', env.docker!.pid()], ...(c ? [['containerd', c] as [string, number]] : [])];
      },
      monitorComms: ['containerd-shim'],
      markers: [`${env.dirs.dockerRun}/`],
    });
  }
  if (env.podman) t.push({ engine: e.podman, daemonPids: async () => [], monitorComms: ['conmon'], markers: [`${env.dirs.podman}/`] });
  return t;
}

async function measure(env: Env, cfg: BenchConfig, r: Results): Promise<void> {
  const native = new NativeClient(env.silo.socket);
  const e = engines({ silo: env.silo, docker: env.docker, podman: env.podman, bundle: env.bundle, runcRoot: env.dirs.runcState, tag: env.tag, native });
  const mem = memoryTargets(env, e);
  r.idleRssFresh = await idleRss(mem);
  const split = () => {
    const s = rssSplitKiB(env.silo.pid());
    return s && { anon: s.anon / 1024, file: s.file / 1024 };
  };
  r.siloRssSplit = { fresh: split() };
  r.nodeBaselineRssMB = await nodeBaselineMB();

  const row1 = [e.siloCli, e.dockerSilo, e.docker, e.podman, e.runc, e.native, e.nativeNoNet, e.siloVersion];
  log('probing engines');
  await probe(row1, log);
  log(`1) run --rm busybox true ×${cfg.n}`);
  r.latency = await latency(row1, cfg.n, log);

  log(`2) throughput: ${cfg.throughputCount} containers, ${cfg.concurrency} at a time`);
  const siloDaemon = async () => [env.silo.pid()];
  const dockerDaemons = async () => {
    const c = await env.docker?.containerdPid();
    return env.docker ? [env.docker.pid(), ...(c ? [c] : [])] : [];
  };
  r.throughput = await throughput([e.siloCli, e.dockerSilo, e.docker, e.podman], cfg.throughputCount, cfg.throughputReps, cfg.concurrency, log, {
    silo: siloDaemon, 'docker-silo': siloDaemon, docker: dockerDaemons,
  });

  await sleep(3000);
  r.idleRssAfterWork = await idleRss(mem);
  r.siloRssSplit.after = split();
  log(`3) memory at ${cfg.memoryContainers} idle containers`);
  r.memory = [];
  for (const t of mem) r.memory.push(await memoryAt(t, cfg.memoryContainers, log));

  log(`live restore: daemon SIGKILLed and restarted with ${cfg.memoryContainers} containers running, ×${cfg.restartReps}`);
  r.restart = await restartTimes(env.silo, native, cfg.memoryContainers, cfg.restartReps, log);

  log('5) image load');
  const archive = await makeArchive(env.dirs.work, `${env.tag}-big:latest`);
  const loaders = [
    { key: 'silo', label: "Silo (docker CLI → Silo's Docker API)", cli: DOCKER_CLI, pre: ['-H', `unix://${env.silo.dockerSocket}`] },
    ...(env.docker ? [{ key: 'docker', label: 'docker CLI → dockerd', cli: DOCKER_CLI, pre: ['-H', `unix://${env.docker.socket}`] }] : []),
  ];
  r.imageLoad = { archiveBytes: archive.bytes, layers: archive.layers, rows: await imageLoad(loaders, archive, cfg.imageReps, log) };

  log(`6) policy scaling (${cfg.policyCount})`);
  r.policy = await policyScaling(here, cfg.policyCount);

  log('4) networking');
  r.network = await networking(env, native, cfg.networkRounds, cfg.networkSeconds, log);
  native.close();
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  const cfg = config(process.argv.slice(2));
  cleanupOnSignals();
  const tag = newTag();
  const r: Results = { schema: 1, startedAt: new Date().toISOString(), config: cfg, machine: machine(), versions: {}, errors: [], loadAvg: { start: loadavg() } };
  let env: Env | undefined;
  try {
    await installPeers(log);
    r.versions = await versions(SILO_BIN, DOCKER_CLI);
    env = await setup(tag, SILO_BIN, r.errors, log);
    r.image = env.image && { method: env.image.method, layers: env.image.layers };
    await measure(env, cfg, r);
  } catch (e) {
    r.errors.push(errText(e));
    log(`failed: ${(e as Error).stack ?? e}`);
  } finally {
    log('tearing down');
    await cleanupAll();
    r.firewallRestored = env?.firewallNotes;
    r.leftovers = await leaks(tag);
    for (const l of r.leftovers) log(`left over: ${l}`);
  }
  r.finishedAt = new Date().toISOString();
  r.loadAvg!.end = loadavg();
  if (process.env.SILO_BENCH_NOTE) r.note = process.env.SILO_BENCH_NOTE;
  r.durationSeconds = Math.round((performance.now() - t0) / 1000);
  const failed = r.errors.length > 0 && !r.latency;
  // --write: a --quick run replaces the committed files too (a busy machine, little time); BENCHMARKS.md says --quick.
  const scratch = (cfg.quick && !process.argv.includes('--write')) || failed;
  const [json, md] = scratch
    ? [join(tmpdir(), 'silo-bench-quick.json'), join(tmpdir(), 'silo-bench-quick.md')]
    : [join(root, 'bench/results/latest.json'), join(root, 'BENCHMARKS.md')];
  await mkdir(dirname(json), { recursive: true });
  await writeFile(json, JSON.stringify(r, null, 2) + '\n');
  // The CRI's figures come from their own run (npm run bench:cri): kept as they were measured.
  const cri = await readFile(join(root, 'bench/results/cri.json'), 'utf8').then((t) => JSON.parse(t) as CriResults, () => undefined);
  const body = renderMarkdown(r, scratch ? json : 'bench/results/latest.json');
  const withCri = cri ? withCriSection(body, criSection(cri)) : body;
  // Likewise the registry's (npm run bench:registry).
  const reg = await readFile(join(root, 'bench/results/registry.json'), 'utf8').then((t) => JSON.parse(t) as RegistryResults, () => undefined);
  const withReg = reg ? withRegistrySection(withCri, registrySection(reg)) : withCri;
  // And the load soak's (npm run bench:soak).
  const soak = await readFile(join(root, 'bench/results/soak.json'), 'utf8').then((t) => JSON.parse(t) as SoakResults, () => undefined);
  const withSoak = soak ? withSoakSection(withReg, soakSection(soak)) : withReg;
  // And VM isolation's (npm run bench:vm).
  const vm = await readFile(join(root, 'bench/results/vm.json'), 'utf8').then((t) => JSON.parse(t) as VmResults, () => undefined);
  await writeFile(md, vm ? withVmSection(withSoak, vmSection(vm)) : withSoak);
  log(`wrote ${json} and ${md} in ${r.durationSeconds} s${r.errors.length ? ` — errors: ${r.errors.join('; ')}` : ''}`);
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
