// `node dist/bench/registry.js [--quick] [--no-docker] [--reps=N] [--ab] [--threads]`: pull and push of a ~200 MB, 5-layer image through the same
// local registry (Debian's docker-registry on loopback, plain HTTP), Silo vs dockerd, both driven by the docker CLI,
// repetitions interleaved. MB/s are compressed bytes over the wire per second of the client command. Pull: the image
// is removed after each repetition, so every blob is fetched again. Push: each repetition goes to a fresh registry
// (an empty data dir), so no blob can be mounted or skipped. Results: bench/results/registry.json and a table on stdout.
// --ab adds a second Silo daemon that downloads on its own thread (SILO_PULL_IN_PROCESS=1; --ab-env=K=V instead
// gives it another variable, e.g. SILO_PULL_WORKERS=3), for an A/B in one run (printed, not written to BENCHMARKS.md).
// --threads prints the CPU each of the first engine's daemon threads used per pull.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { RepoClient, Transport } from '../src/storage/registry/client.js';
import { MT } from '../src/storage/registry/media.js';
import { sha256 } from '../src/storage/digest.js';
import { createBridge, DOCKER_BRIDGE_CIDR, DOCKER_CLI, startDockerd, type Dockerd } from './env/dockerd.js';
import { installPeers } from './env/install.js';
import { snapshotFirewall } from './env/firewall.js';
import { removeCgroups } from './env/cgroups.js';
import { startSilo } from './env/silo.js';
import { cleanupAll, cleanupOnSignals, onCleanup } from './lib/cleanup.js';
import { errText, exec, sleep, tryExec } from './lib/proc.js';
import { summarize, type Summary } from './lib/stats.js';
import { newTag } from './setup.js';
import { registrySection, withRegistrySection, type RegistryResults } from './report/registry.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const quick = process.argv.includes('--quick');
const withDocker = !process.argv.includes('--no-docker');
const ab = process.argv.includes('--ab');
// --ab-env K=V: the second daemon's environment instead of SILO_PULL_IN_PROCESS=1.
const abEnv = Object.fromEntries(process.argv.filter((a) => a.startsWith('--ab-env=')).map((a) => a.slice(9).split('=') as [string, string]));
const repsArg = process.argv.find((a) => a.startsWith('--reps='));
const REPS = repsArg ? Math.max(1, Number(repsArg.slice(7)) || 1) : quick ? 1 : 3;
const LAYERS = 5;
const LAYER_BYTES = quick ? 8e6 : 40e6;
const log = (m: string) => process.stderr.write(`[registry bench] ${m}\n`);

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

/** A docker-registry on loopback over plain HTTP, its data in `dir`. */
async function startRegistry(dir: string): Promise<{ host: string; stop: () => Promise<void> }> {
  const port = await freePort();
  await mkdir(dir, { recursive: true });
  const cfg = join(dir, 'config.yml');
  await writeFile(cfg, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const p: ChildProcess = spawn('docker-registry', ['serve', cfg], { stdio: 'ignore' });
  const stop = async () => {
    // exitCode stays null for a process ended by a signal: check both, or a second stop waits forever.
    if (p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      if ((await Promise.race([done.then(() => 'exited'), sleep(5000)])) !== 'exited') {
        p.kill('SIGKILL');
        await done;
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  onCleanup(`registry ${dir}`, stop);
  for (let i = 0; i < 200; i++) {
    if ((await tryExec('curl', ['-sf', `http://127.0.0.1:${port}/v2/`])).code === 0) return { host: `127.0.0.1:${port}`, stop };
    await sleep(50);
  }
  throw new Error('docker-registry did not come up');
}

/** Layer content like real images': files of text that gzip to about 60%. */
async function layer(i: number): Promise<{ blob: Buffer; diffId: string }> {
  const pack = tar.pack();
  const words = Array.from({ length: 4096 }, () => randomBytes(6).toString('base64'));
  let left = LAYER_BYTES;
  for (let f = 0; left > 0; f++) {
    const size = Math.min(left, 2e6);
    const parts: string[] = [];
    let n = 0;
    while (n < size) {
      const w = words[(Math.random() * words.length) | 0] + (Math.random() < 0.1 ? '\n' : ' ');
      parts.push(w);
      n += w.length;
    }
    const body = Buffer.from(parts.join('')).subarray(0, size);
    pack.entry({ name: `layer${i}/file${f}.txt`, size: body.length, mode: 0o644 }, body);
    left -= size;
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  const t = Buffer.concat(chunks);
  return { blob: gzipSync(t, { level: 6 }), diffId: sha256(t) };
}

async function pushTestImage(host: string, ref: string): Promise<number> {
  const t = new Transport({ timeoutMs: 60_000, userAgent: 'silo-bench' });
  const c = new RepoClient(t, { base: `http://${host}`, host, insecure: true, mirror: false }, ref.split(':')[0], ['pull', 'push']);
  const ls = await Promise.all(Array.from({ length: LAYERS }, (_, i) => layer(i)));
  const descs = ls.map((l) => ({ mediaType: MT.dockerLayerGzip, digest: sha256(l.blob), size: l.blob.length }));
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2026-01-01T00:00:00Z', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) }, history: ls.map(() => ({ created_by: 'bench' })) }));
  for (const [i, l] of ls.entries()) {
    const u = await c.startUpload(descs[i].digest);
    if (!u.mounted) await c.putBlob(u.location, descs[i], l.blob);
  }
  const cd = { mediaType: MT.dockerConfig, digest: sha256(cfg), size: cfg.length };
  const u = await c.startUpload(cd.digest);
  if (!u.mounted) await c.putBlob(u.location, cd, cfg);
  await c.putManifest(ref.split(':')[1], Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerManifest, config: cd, layers: descs })), MT.dockerManifest);
  await t.close();
  return descs.reduce((a, d) => a + d.size, 0);
}

interface Engine {
  key: string;
  label: string;
  host: string;
  /** The engine's daemon processes, whose CPU time (with their reaped children's) a pull is charged. */
  pids: () => Promise<number[]>;
}

/** CPU seconds by thread name (comm) of a process so far, for --threads. */
async function threadCpu(pid: number): Promise<Map<string, number>> {
  const { readdir } = await import('node:fs/promises');
  const out = new Map<string, number>();
  for (const t of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${t}/stat`, 'utf8').catch(() => '');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
    out.set('(system)', (out.get('(system)') ?? 0) + Number(f[12]) / 100);
  }
  return out;
}

/** CPU seconds (user + system, reaped children included) the processes have used so far. */
async function cpuSeconds(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const p of pids) {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14–17 of stat(5): utime, stime, cutime, cstime (this slice starts at field 3).
    ticks += f.slice(11, 15).reduce((a, x) => a + (Number(x) || 0), 0);
  }
  return ticks / 100;
}

async function main(): Promise<void> {
  cleanupOnSignals();
  const tag = newTag();
  const engines: Engine[] = [];
  const rows: RegistryResults['rows'] = {};
  try {
    // Undone last: the firewall as it was (dockerd adds iptables chains), the cgroups, the dirs.
    const fw = await snapshotFirewall();
    onCleanup('firewall', () => fw.restore());
    onCleanup('cgroups', () => removeCgroups(tag));
    for (const d of [`/var/lib/${tag}-docker`, `/run/${tag}-docker`]) onCleanup(`dir ${d}`, () => rm(d, { recursive: true, force: true }));
    const silo = await startSilo(tag, join(root, 'bin/silo'), `/var/lib/${tag}`, `/run/${tag}`);
    engines.push({ key: 'silo', label: 'Silo (docker CLI)', host: `unix://${silo.dockerSocket}`, pids: async () => [silo.pid()] });
    if (ab) {
      onCleanup('cgroups b', () => removeCgroups(`${tag}b`));
      const b = await startSilo(`${tag}b`, join(root, 'bin/silo'), `/var/lib/${tag}b`, `/run/${tag}b`, Object.keys(abEnv).length ? abEnv : { SILO_PULL_IN_PROCESS: '1' });
      engines.push({ key: 'silo-in-process', label: 'Silo, in-process pull', host: `unix://${b.dockerSocket}`, pids: async () => [b.pid()] });
    }
    if (withDocker) {
      try {
        await installPeers(log);
        await createBridge(`${tag}d`, DOCKER_BRIDGE_CIDR);
        const d: Dockerd = await startDockerd(tag, `/var/lib/${tag}-docker`, `/run/${tag}-docker`, true);
        engines.push({ key: 'docker', label: 'dockerd', host: `unix://${d.socket}`, pids: async () => [d.pid(), (await d.containerdPid()) ?? -1] });
      } catch (e) {
        rows.docker = { na: errText(e) };
        log(`dockerd: n/a (${errText(e)})`);
      }
    }
    const src = await startRegistry(`/var/lib/${tag}-registry`);
    const ref = `${src.host}/bench/big:1`;
    log(`making and pushing a ${LAYERS}-layer image of ${(LAYERS * LAYER_BYTES) / 1e6} MB (uncompressed)`);
    const bytes = await pushTestImage(src.host, 'bench/big:1');
    log(`compressed: ${(bytes / 1e6).toFixed(1)} MB`);
    const cli = existsSync(DOCKER_CLI) ? DOCKER_CLI : 'docker';
    const dk = (e: Engine, args: string[]) => exec(cli, ['-H', e.host, ...args], { timeoutMs: 600_000 });
    const loadStart = loadavg()[0];
    const pulls = new Map<string, number[]>();
    const pushes = new Map<string, number[]>();
    const cpu = new Map<string, number[]>();
    for (let r = 0; r < REPS; r++) {
      for (let j = 0; j < engines.length; j++) {
        const e = engines[(r + j) % engines.length];
        await exec('sync', []);
        const pids = await e.pids();
        const cpu0 = await cpuSeconds(pids);
        const th0 = process.argv.includes('--threads') ? await threadCpu(pids[0]) : undefined;
        const out = await dk(e, ['pull', '-q', ref]);
        const used = (await cpuSeconds(pids)) - cpu0;
        if (th0) {
          // Threads that ended during the pull (idle workers) are missing from the second look.
          const th1 = await threadCpu(pids[0]);
          log(`  threads: ${[...th1].map(([k, v]) => `${k} ${(v - (th0.get(k) ?? 0)).toFixed(2)}`).join(', ')}`);
        }
        (pulls.get(e.key) ?? pulls.set(e.key, []).get(e.key)!).push(out.ms / 1000);
        (cpu.get(e.key) ?? cpu.set(e.key, []).get(e.key)!).push(used);
        log(`pull ${e.label}: ${(out.ms / 1000).toFixed(2)} s, ${used.toFixed(2)} CPU-s, load ${loadavg()[0].toFixed(1)}`);
        // Push to an empty registry: every blob is uploaded.
        const dst = await startRegistry(`/var/lib/${tag}-push-${e.key}-${r}`);
        await dk(e, ['tag', ref, `${dst.host}/bench/copy:1`]);
        await exec('sync', []);
        const p = await dk(e, ['push', '-q', `${dst.host}/bench/copy:1`]);
        (pushes.get(e.key) ?? pushes.set(e.key, []).get(e.key)!).push(p.ms / 1000);
        log(`push ${e.label}: ${(p.ms / 1000).toFixed(2)} s`);
        await dst.stop();
        await tryExec(cli, ['-H', e.host, 'rmi', '-f', ref, `${dst.host}/bench/copy:1`]);
      }
    }
    for (const e of engines) {
      rows[e.key] = { pull: summarize(pulls.get(e.key)!.map((s) => bytes / 1e6 / s)), push: summarize(pushes.get(e.key)!.map((s) => bytes / 1e6 / s)), pullCpu: summarize(cpu.get(e.key)!) };
    }
    const lines = ['| engine | pull MB/s (median) | pull CPU-s (median) | push MB/s (median) |', '|---|---|---|---|'];
    for (const [k, v] of Object.entries(rows)) lines.push(`| ${k} | ${v.pull?.median.toFixed(1) ?? 'n/a'} | ${cpu.has(k) ? summarize(cpu.get(k)!).median.toFixed(2) : 'n/a'} | ${v.push?.median.toFixed(1) ?? 'n/a'} |${v.na ? ` ${v.na}` : ''}`);
    if (rows.silo?.pull && rows.docker?.pull) lines.push('', `Silo/dockerd: pull ${(rows.silo.pull.median / rows.docker.pull.median).toFixed(2)}×, push ${(rows.silo.push!.median / rows.docker.push!.median).toFixed(2)}×`);
    const b = rows['silo-in-process'];
    if (rows.silo?.pull && b?.pull) lines.push('', `Silo/Silo in-process: pull ${(rows.silo.pull.median / b.pull.median).toFixed(2)}×`);
    if (b?.pull && rows.docker?.pull) lines.push(`Silo in-process/dockerd: pull ${(b.pull.median / rows.docker.pull.median).toFixed(2)}×`);
    process.stdout.write(lines.join('\n') + '\n');
    if (!quick && !ab) {
      await mkdir(join(root, 'bench/results'), { recursive: true });
      const results: RegistryResults = { date: new Date().toISOString(), compressedBytes: bytes, layers: LAYERS, reps: REPS, rows, loadAverage: [loadStart, loadavg()[0]] };
      await writeFile(join(root, 'bench/results/registry.json'), JSON.stringify(results, null, 2) + '\n');
      const md = join(root, 'BENCHMARKS.md');
      await writeFile(md, withRegistrySection(await readFile(md, 'utf8').catch(() => '# Benchmarks\n'), registrySection(results)));
    }
  } finally {
    await cleanupAll();
  }
}

await main();
log('done');
// Nothing else to wait for: leave even if a library keeps a handle open.
process.exit(process.exitCode ?? 0);
