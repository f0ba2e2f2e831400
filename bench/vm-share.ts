// What guest RAM virtiofs can use costs (docs/vm.md "Bind mounts and volumes"), interleaved round by round:
//   clone    a VM restored from its template, RAM a private copy-on-write map of the template's (no virtiofs possible)
//   pod      a pod's VM (VirtualMachine.HostedMounts): restored onto a tmpfs copy of the template's RAM mapped shared,
//            its share's virtiofs device hot-added
//   bind     a container with a bind mount: restored onto a tmpfs RAM copy mapped shared, its device hot-added
//   cold     the same container on a second daemon with templates off: cold boot, RAM in a shared memfd
// For each: the start (the daemon's "created N ms" of its `up by` line) and host memory once idle (after 3 s): PSS of
// QEMU and its virtiofsd, plus for a RAM copy the part of its tmpfs RAM copy that no process maps (the copy is memory
// whether or not QEMU touched a page of it since). Run as root: `node dist/bench/vm-share.js [--n 4]`.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeDaemonLeftovers } from './lib/daemon-dirs.js';

const SILO = join(dirname(fileURLToPath(import.meta.url)), '../../bin/silo');
const n = process.argv.includes('--n') ? Number(process.argv[process.argv.indexOf('--n') + 1]) : 4;
// Short: a daemon's run dir must leave room for its containers' sockets (at most 25 characters: the daemon says so).
const base = `silo-bench-vs${randomBytes(3).toString('hex')}`;
/** Two daemons: templates on (a) and off (b, the cold boots). */
const daemons = { a: base, b: `${base}c` };
const dirs = (tag: string) => ({ stateDir: `/var/lib/${tag}`, runDir: `/run/${tag}` });
const hostDir = `/tmp/${base}-dir`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let logs = '';

function cli(tag: string, args: string[]): string {
  const r = spawnSync(process.execPath, [SILO, ...args], { env: { ...process.env, SILO_HOST: `unix://${dirs(tag).runDir}/silo.sock` }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`silo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function api(method: string, path: string, body?: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: `${dirs(base).runDir}/silo.sock`, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let b = '';
      res.on('data', (x) => (b += x));
      res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve(b) : reject(new Error(`${method} ${path}: ${res.statusCode} ${b}`))));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Pss of a process, KiB, and the part of it that maps `file` (the pod's RAM copy). */
function pss(pid: number, file?: string): { all: number; ofFile: number } {
  let all = 0;
  let ofFile = 0;
  let inFile = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = !!file && line.includes(file);
    const m = /^Pss:\s+(\d+)/.exec(line);
    if (m) {
      all += Number(m[1]);
      if (inFile) ofFile += Number(m[1]);
    }
  }
  return { all, ofFile };
}

function pidsOf(tag: string, id: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(`${tag}-${id.slice(0, 12)},`) || (cmd.includes('virtiofsd') && cmd.includes(`${dirs(tag).runDir}/vm/${id.slice(0, 16)}/`))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The `created N ms` of the system's `up by` line, and how. */
async function upLine(id: string): Promise<{ ms: number; how: string; marks: string }> {
  for (let i = 0; i < 100; i++) {
    const m = new RegExp(`vm: ${id.slice(0, 12)} up by ([^(]+) \\([^)]*\\): (.*)created (\\d+) ms`).exec(logs);
    if (m) return { ms: Number(m[3]), how: m[1].trim(), marks: m[2].replace(/, $/, '') };
    await sleep(100);
  }
  throw new Error(`no up line for ${id}`);
}

async function one(kind: 'clone' | 'pod' | 'bind' | 'cold'): Promise<{ ms: number; how: string; marks: string; mib: number; copyMiB: number }> {
  let id: string;
  const tag = kind === 'cold' ? daemons.b : daemons.a;
  if (kind === 'pod') {
    id = JSON.parse(await api('POST', '/v1/systems', { Image: 'busybox', Document: { Isolation: 'vm', VirtualMachine: { HostedMounts: true }, Process: { CommandArgs: ['sleep', '1000'] } } })).Id;
    await api('POST', `/v1/systems/${id}/start`);
  } else id = cli(tag, ['run', '-d', '--isolation', 'vm', ...(kind !== 'clone' ? ['-v', `${hostDir}:/d`] : []), 'busybox', 'sleep', '1000']);
  const up = await upLine(id);
  await sleep(3000);
  const copy = `/dev/shm/${tag}-${id.slice(0, 12)}.ram`;
  let total = 0;
  let mapped = 0;
  for (const p of pidsOf(tag, id)) {
    const x = pss(p, copy);
    total += x.all;
    mapped += x.ofFile;
  }
  // Unlinked once QEMU mapped it: its size through QEMU's mapping.
  let copyKiB = 0;
  for (const p of pidsOf(tag, id)) {
    const line = readFileSync(`/proc/${p}/maps`, 'utf8').split('\n').find((l) => l.includes(`${copy} (deleted)`));
    if (line) copyKiB = (statSync(`/proc/${p}/map_files/${line.split(' ')[0]}`).blocks * 512) / 1024;
  }
  cli(tag, ['rm', '-f', id]);
  // The copy counts whole: what the processes map of it is in their PSS already.
  return { ms: up.ms, how: up.how, marks: up.marks, mib: (total - mapped + copyKiB) / 1024, copyMiB: copyKiB / 1024 };
}

async function main(): Promise<void> {
  mkdirSync(hostDir, { recursive: true });
  const procs = Object.values(daemons).map((tag) => {
    const p = spawn(process.execPath, [SILO, 'daemon', '--state-dir', dirs(tag).stateDir, '--run-dir', dirs(tag).runDir, '--cgroup-parent', tag, '--vm-templates', tag === daemons.a ? 'on' : 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (b: Buffer) => (logs += b.toString()));
    p.stderr!.on('data', (b: Buffer) => (logs += b.toString()));
    return p;
  });
  try {
    for (const tag of Object.values(daemons)) for (let i = 0; i < 200 && !existsSync(`${dirs(tag).runDir}/silo.sock`); i++) await sleep(50);
    await sleep(500);
    cli(daemons.a, ['vm', 'template', 'make']);
    const r: Record<string, { ms: number[]; mib: number[]; copy: number[]; how: Set<string> }> = {};
    const loads: number[] = [loadavg()[0]];
    for (let round = 0; round < n; round++) {
      for (const kind of ['clone', 'pod', 'bind', 'cold'] as const) {
        const x = await one(kind);
        r[kind] ??= { ms: [], mib: [], copy: [], how: new Set() };
        r[kind].ms.push(x.ms);
        r[kind].mib.push(x.mib);
        r[kind].copy.push(x.copyMiB);
        r[kind].how.add(x.how);
        process.stderr.write(`round ${round + 1} ${kind}: ${x.how} ${x.ms} ms (${x.marks}), ${x.mib.toFixed(1)} MiB${x.copyMiB ? ` (copy ${x.copyMiB.toFixed(1)} MiB)` : ''}\n`);
      }
      loads.push(loadavg()[0]);
    }
    console.log(`| start (n=${n}, medians; load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}) | created | host memory idle |`);
    console.log('|---|---|---|');
    for (const [k, v] of Object.entries(r)) console.log(`| ${k}: ${[...v.how].join(', ')} | ${median(v.ms)} ms | ${median(v.mib).toFixed(1)} MiB${median(v.copy) ? ` (RAM copy ${median(v.copy).toFixed(1)} MiB)` : ''} |`);
  } finally {
    for (const p of procs) {
      p.kill('SIGTERM');
      await new Promise((res) => p.once('exit', res));
    }
    for (const tag of Object.values(daemons)) {
      const { stateDir, runDir } = dirs(tag);
      await removeDaemonLeftovers(tag, stateDir, runDir);
    }
    rmSync(hostDir, { recursive: true, force: true });
  }
}

await main();
