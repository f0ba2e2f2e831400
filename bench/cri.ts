// `npm run bench:cri`: the Kubernetes CRI measured. critest v1.29.0 and v1.32.0 (the CRI's conformance suite, from
// ../shared/tools/cri or $SILO_CRI_TOOLS) run against Silo, and pod start to running (RunPodSandbox + CreateContainer
// + StartContainer) is timed against containerd's CRI, interleaved. Both runtimes pull critest's stand-in images from
// a docker-registry on loopback that they use as the mirror of docker.io, registry.k8s.io and gcr.io. Everything is
// made under a silo-bench-cri-<rand> name and removed at the end. Writes bench/results/cri.json and the CRI section of
// BENCHMARKS.md (too slow for `npm test`: critest alone takes two to three minutes here).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { openNetworkService } from '../src/network/index.js';
import { criClient, type CriClient } from '../test/e2e/cri-client.js';
import { criSection, withCriSection, type CriResults, type CritestScore } from './report/cri.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const root = resolve(here, '../..');
const tools = process.env.SILO_CRI_TOOLS ?? resolve(root, '../shared/tools/cri');
const tag = `silo-bench-cri${randomBytes(2).toString('hex')}`;
const work = `/var/lib/${tag}`;
const rounds = Number(process.env.CRI_BENCH_ROUNDS ?? 10);
const t0 = performance.now();
const log = (m: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: [string, () => Promise<unknown>][] = [];
const onCleanup = (what: string, fn: () => Promise<unknown>) => cleanups.unshift([what, fn]);

function run(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...o.env }, cwd: o.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (out += b));
    p.on('close', (code) => res({ code: code ?? 128, out }));
    p.on('error', (e) => res({ code: 127, out: String(e) }));
  });
}

function daemon(name: string, cmd: string, args: string[], logFile: string): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (b) => (out += b));
  p.stderr!.on('data', (b) => (out += b));
  onCleanup(`${name} (pid ${p.pid})`, async () => {
    if (p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([gone, sleep(10_000)]);
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    await writeFile(logFile, out).catch(() => {});
  });
  return p;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

async function waitFor(what: string, ok: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${what} did not come up`);
}

const MIRRORED = ['docker.io', 'registry.k8s.io', 'gcr.io'];

async function startRegistry(): Promise<string> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  await mkdir(join(work, 'registry'), { recursive: true });
  await writeFile(join(work, 'registry/config.yml'), `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${work}/registry/data\nhttp:\n  addr: ${addr}\n`);
  daemon('docker-registry', 'docker-registry', ['serve', join(work, 'registry/config.yml')], join(work, 'registry.log'));
  await waitFor('docker-registry', async () => (await fetch(`http://${addr}/v2/`)).ok);
  const made = await run('bash', [join(tools, 'make-images.sh'), addr]);
  if (made.code !== 0) throw new Error(`make-images.sh: ${made.out.slice(-500)}`);
  return addr;
}

/** A Silo daemon from the tree `siloRoot` (this one, or a baseline's), under its own name `t`. */
async function startSilo(registry: string, siloRoot = root, t = tag): Promise<string> {
  const cfg = join(work, 'registries.json');
  await writeFile(cfg, JSON.stringify({ mirrors: Object.fromEntries(MIRRORED.map((h) => [h, [`http://${registry}`]])), insecure: [registry], fallbackToUpstream: false }));
  const runDir = `/run/${t}`;
  const state = join(work, t === tag ? 'silo' : t);
  onCleanup('silo network, cgroups and dirs', async () => {
    // The daemon's network and table outlive it by design (as docker's bridge): this run made them, so it removes them.
    const net = await openNetworkService({ stateDir: join(state, 'network'), runDir: join(runDir, 'network'), prefix: t });
    await net.purge();
    await net.close();
    for (const ctl of await readdir('/sys/fs/cgroup')) await rmdir(`/sys/fs/cgroup/${ctl}/${t}`).catch(() => {});
    await rm(runDir, { recursive: true, force: true });
  });
  const p = daemon(t, process.execPath, [join(siloRoot, 'bin/silo'), 'daemon', '--state-dir', state, '--run-dir', runDir, '--cgroup-parent', t, '--registry-config', cfg, '--log-level', 'warn'], join(work, `${t}.log`));
  const sock = `${runDir}/cri.sock`;
  await waitFor('silo', async () => p.exitCode === null && existsSync(`${runDir}/silo.sock`));
  // Everything a run leaves is removed through Silo itself (its own network and cgroups included).
  onCleanup('silo objects', async () => {
    const env = { SILO_HOST: `unix://${runDir}/silo.sock` };
    const ids = (await run(process.execPath, [join(siloRoot, 'bin/silo'), 'ps', '-aq'], { env })).out.split('\n').filter(Boolean);
    if (ids.length) await run(process.execPath, [join(siloRoot, 'bin/silo'), 'rm', '-f', ...ids], { env });
  });
  return sock;
}

/** containerd 1.6 with its CRI plugin, runc, cgroupfs and the CNI bridge, all under this run's names. */
async function startContainerd(registry: string): Promise<string | undefined> {
  if ((await run('containerd', ['--version'])).code !== 0) return undefined;
  const dir = join(work, 'containerd');
  const state = `/run/${tag}-ctrd`;
  const bridge = `scri${tag.slice(-4)}`;
  const subnet = `10.239.${randomBytes(1)[0]}.0/24`;
  for (const h of MIRRORED) {
    const server = h === 'docker.io' ? 'https://registry-1.docker.io' : `https://${h}`;
    await mkdir(join(dir, 'certs.d', h), { recursive: true });
    await writeFile(join(dir, 'certs.d', h, 'hosts.toml'), `server = "${server}"\n\n[host."http://${registry}"]\n  capabilities = ["pull", "resolve"]\n`);
  }
  await mkdir(join(dir, 'net.d'), { recursive: true });
  await writeFile(join(dir, 'net.d', '10-bench.conflist'), JSON.stringify({
    cniVersion: '0.4.0',
    name: tag,
    plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir: join(dir, 'ipam') } },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'loopback' },
    ],
  }));
  await writeFile(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${state}"`,
    'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
    '[grpc]',
    `  address = "${state}/containerd.sock"`,
    '[plugins."io.containerd.grpc.v1.cri"]',
    '  sandbox_image = "registry.k8s.io/pause:3.9"',
    // As Silo does: lowering a process' OOM score needs CAP_SYS_RESOURCE, which root lacks on some hosts (this one).
    '  restrict_oom_score_adj = true',
    '  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '    runtime_type = "io.containerd.runc.v2"',
    '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    '      SystemdCgroup = false',
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    '    bin_dir = "/usr/lib/cni"',
    `    conf_dir = "${dir}/net.d"`,
    '  [plugins."io.containerd.grpc.v1.cri".registry]',
    `    config_path = "${dir}/certs.d"`,
    '',
  ].join('\n'));
  const shimDir = '/run/containerd';
  const hadShimDir = existsSync(shimDir);
  onCleanup('containerd dirs', async () => {
    await run('ip', ['link', 'del', bridge]);
    await rm(state, { recursive: true, force: true });
    if (!hadShimDir) await rm(shimDir, { recursive: true, force: true });
  });
  daemon('containerd', 'containerd', ['--config', join(dir, 'config.toml')], join(work, 'containerd.log'));
  const sock = `${state}/containerd.sock`;
  await waitFor('containerd', async () => existsSync(sock));
  return sock;
}

/** RunPodSandbox + CreateContainer + StartContainer, ms; the pod is removed afterwards (not timed). */
async function podStart(c: CriClient, i: number, who: string): Promise<number> {
  const config = { metadata: { name: `bench-${who}-${i}`, uid: `${tag}-${who}-${i}`, namespace: 'bench', attempt: 0 }, hostname: `bench${i}`, log_directory: join(work, 'pods', `${who}-${i}`), linux: {} };
  await mkdir(config.log_directory, { recursive: true });
  const t = performance.now();
  const { pod_sandbox_id: pod } = await c.runtime.RunPodSandbox({ config });
  const { container_id: ctr } = await c.runtime.CreateContainer({
    pod_sandbox_id: pod,
    sandbox_config: config,
    config: { metadata: { name: 'main', attempt: 0 }, image: { image: 'docker.io/library/busybox:1.28' }, command: ['sleep', '3600'], log_path: 'main.log', linux: {} },
  });
  await c.runtime.StartContainer({ container_id: ctr });
  const ms = performance.now() - t;
  await c.runtime.StopPodSandbox({ pod_sandbox_id: pod });
  await c.runtime.RemovePodSandbox({ pod_sandbox_id: pod });
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

async function critest(version: string, endpoint: string): Promise<CritestScore> {
  const out = join(work, `critest-${version}`);
  const r = await run('bash', [join(tools, 'run-critest.sh'), `unix://${endpoint}`], { env: { CRITEST: join(tools, 'bin', `critest-${version}`), OUT: out }, cwd: work });
  const counts = /counts: (\{[^}]*\})/.exec(r.out)?.[1];
  const c = counts ? (JSON.parse(counts.replace(/'/g, '"')) as Record<string, number>) : {};
  const wall = Number(/wall (\d+) s/.exec(r.out)?.[1] ?? NaN);
  const failed = [...r.out.matchAll(/^\s+FAILED: (.*)$/gm)].map((m) => m[1]);
  return { version, passed: c.passed ?? 0, failed: c.failed ?? 0, skipped: c.skipped ?? 0, wallSeconds: wall, failures: failed };
}

async function main(): Promise<void> {
  if (!existsSync(join(tools, 'run-critest.sh'))) throw new Error(`no CRI tools at ${tools} (set SILO_CRI_TOOLS)`);
  await mkdir(work, { recursive: true });
  onCleanup('work dir', () => rm(work, { recursive: true, force: true }));
  log(`registry and critest's images (${tools})`);
  const registry = await startRegistry();
  log('silo');
  const siloSock = await startSilo(registry);
  log('containerd');
  const ctrdSock = await startContainerd(registry).catch((e) => (log(`containerd: ${e}`), undefined));
  const silo = criClient(siloSock);
  const ctrd = ctrdSock ? criClient(ctrdSock) : undefined;
  // CRI_BENCH_BASELINE=<another built Silo tree>: that Silo too, interleaved, for a before/after ratio.
  const baseRoot = process.env.CRI_BENCH_BASELINE;
  const base = baseRoot ? criClient(await startSilo(registry, resolve(baseRoot), `${tag}b`)) : undefined;
  onCleanup('clients', async () => (silo.close(), ctrd?.close(), base?.close()));
  for (const c of [silo, ctrd, base]) if (c) await c.image.PullImage({ image: { image: 'docker.io/library/busybox:1.28' } });
  if (ctrd) await ctrd.image.PullImage({ image: { image: 'registry.k8s.io/pause:3.9' } });

  log(`pod start, ${rounds} rounds interleaved`);
  const times: Record<string, number[]> = { silo: [], containerd: [], baseline: [] };
  await podStart(silo, -1, 'silo'); // warm-up: the pod network and the first image root
  if (ctrd) await podStart(ctrd, -1, 'ctrd');
  if (base) await podStart(base, -1, 'base');
  for (let i = 0; i < rounds; i++) {
    times.silo.push(await podStart(silo, i, 'silo'));
    if (ctrd) times.containerd.push(await podStart(ctrd, i, 'ctrd'));
    if (base) times.baseline.push(await podStart(base, i, 'base'));
  }
  if (base) log(`baseline silo ${median(times.baseline).toFixed(1)} ms, ratio ${(median(times.baseline) / median(times.containerd)).toFixed(2)}; this silo / baseline ${(median(times.silo) / median(times.baseline)).toFixed(2)}`);
  log(`silo ${median(times.silo).toFixed(1)} ms, containerd ${median(times.containerd).toFixed(1)} ms, ratio ${(median(times.silo) / median(times.containerd)).toFixed(2)}`);

  // CRI_BENCH_CRITEST=0: pod start only (a quick before/after), nothing written.
  if (process.env.CRI_BENCH_CRITEST === '0') return;
  const scores: CritestScore[] = [];
  for (const v of ['v1.29.0', 'v1.32.0']) {
    log(`critest ${v}`);
    scores.push(await critest(v, siloSock));
    log(`  ${JSON.stringify(scores.at(-1))}`);
  }
  const results: CriResults = {
    date: new Date().toISOString(),
    podStart: { rounds, siloMs: times.silo, containerdMs: ctrd ? times.containerd : undefined, siloMedianMs: median(times.silo), containerdMedianMs: ctrd ? median(times.containerd) : undefined },
    critest: scores,
    containerdVersion: ctrd ? (await run('containerd', ['--version'])).out.trim() : undefined,
  };
  await writeFile(join(root, 'bench/results/cri.json'), JSON.stringify(results, null, 2) + '\n');
  const md = join(root, 'BENCHMARKS.md');
  const current = await readFile(md, 'utf8').catch(() => '');
  await writeFile(md, withCriSection(current, criSection(results)));
  log('wrote bench/results/cri.json and the CRI section of BENCHMARKS.md');
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  let failed = false;
  try {
    await main();
  } catch (e) {
    failed = true;
    log(`failed: ${(e as Error).stack ?? e}`);
  } finally {
    for (const [what, fn] of cleanups) await fn().catch((e) => log(`cleanup ${what}: ${e}`));
  }
  process.exit(failed ? 1 : 0);
}
