// Silo's daemon for the bench, in its own state dir, run dir and cgroup parent (the bench's tag), so it shares
// nothing with a daemon someone else runs on this machine. Teardown removes every object that carries the tag:
// containers, networks, the nft table, links owned by the tag (ifalias), netns and cgroup dirs.

import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { onCleanup } from '../lib/cleanup.js';
import { exec, sleep, tryExec, type ExecOpts, type Out } from '../lib/proc.js';
import { removeCgroups } from './cgroups.js';

export interface Silo {
  tag: string;
  bin: string;
  stateDir: string;
  runDir: string;
  socket: string;
  dockerSocket: string;
  pid: () => number;
  env: NodeJS.ProcessEnv;
  cli(args: string[], o?: ExecOpts): Promise<Out>;
  /** SIGKILL the daemon and start a new one on the same state; resolves when it has been spawned (not yet serving). */
  killAndRespawn(): Promise<{ spawnedAt: number }>;
}

export function canConnect(path: string): Promise<boolean> {
  return new Promise((r) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

export async function startSilo(tag: string, bin: string, stateDir: string, runDir: string, daemonEnv: NodeJS.ProcessEnv = {}): Promise<Silo> {
  const socket = join(runDir, 'silo.sock');
  const env = { ...process.env, SILO_HOST: `unix://${socket}` };
  let proc: ChildProcess | undefined;
  let output = '';
  const silo: Silo = {
    tag, bin, stateDir, runDir, socket, env,
    dockerSocket: join(runDir, 'docker.sock'),
    pid: () => proc?.pid ?? -1,
    cli: (args, o = {}) => exec(process.execPath, [bin, ...args], { env, ...o }),
    killAndRespawn: async () => {
      const old = proc!;
      const gone = new Promise((r) => old.once('exit', r));
      old.kill('SIGKILL');
      await gone;
      const spawnedAt = performance.now();
      spawnDaemon();
      return { spawnedAt };
    },
  };
  onCleanup('silo daemon and its objects', () => stopSilo(silo, proc));
  const spawnDaemon = () => {
    proc = spawn(process.execPath, [bin, 'daemon', '--state-dir', stateDir, '--run-dir', runDir, '--cgroup-parent', tag, '--log-level', 'error'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...daemonEnv },
    });
    proc.stdout!.on('data', (b) => (output += b));
    proc.stderr!.on('data', (b) => (output += b));
    // SILO_BENCH_DAEMON_LOG=<file>: the daemon's output is also kept there (with NODE_OPTIONS=--trace-gc, say).
    const keep = process.env.SILO_BENCH_DAEMON_LOG;
    if (keep) for (const s of [proc.stdout!, proc.stderr!]) s.on('data', (b) => appendFileSync(keep, b));
  };
  spawnDaemon();
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(socket))) {
    if (proc!.exitCode !== null) throw new Error(`silo daemon exited: ${output.trim().slice(-300)}`);
    if (Date.now() > deadline) throw new Error(`silo daemon did not come up: ${output.trim().slice(-300)}`);
    await sleep(50);
  }
  return silo;
}

async function stopSilo(s: Silo, proc: ChildProcess | undefined): Promise<void> {
  if (proc && proc.exitCode === null) {
    const ids = (await tryExec(process.execPath, [s.bin, 'ps', '-aq', '--no-trunc'], { env: s.env })).stdout.split('\n').filter(Boolean);
    for (let i = 0; i < ids.length; i += 20) await tryExec(process.execPath, [s.bin, 'rm', '-f', ...ids.slice(i, i + 20)], { env: s.env, timeoutMs: 120_000 });
    const nets = (await tryExec(process.execPath, [s.bin, 'network', 'ls', '-q'], { env: s.env })).stdout.split('\n').filter(Boolean);
    if (nets.length) await tryExec(process.execPath, [s.bin, 'network', 'rm', ...nets], { env: s.env });
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([done, sleep(15_000)]);
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
  await removeTaggedNetworkObjects(s.tag);
  await removeCgroups(s.tag);
  await rm(s.stateDir, { recursive: true, force: true });
  await rm(s.runDir, { recursive: true, force: true });
}

/** Whatever `silo network rm` left: the nft table, links whose ifalias names the tag, netns `<tag>-*`. */
export async function removeTaggedNetworkObjects(tag: string): Promise<void> {
  await tryExec('nft', ['delete', 'table', 'inet', tag]);
  const links = JSON.parse((await tryExec('ip', ['-j', '-d', 'link', 'show'])).stdout || '[]') as Array<{ ifname: string; ifalias?: string }>;
  for (const l of links) if (l.ifalias?.startsWith(`silo:${tag}:`)) await tryExec('ip', ['link', 'del', l.ifname]);
  for (const line of (await tryExec('ip', ['netns', 'list'])).stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name.startsWith(`${tag}-`)) await tryExec('ip', ['netns', 'del', name]);
  }
  // Mounts of a crashed daemon (overlay roots, scratch) would keep loop devices busy.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.includes(tag));
  for (const m of mounts.reverse()) await tryExec('umount', ['-l', m]);
  for (const line of (await tryExec('losetup', ['-a'])).stdout.split('\n')) {
    if (line.includes(tag)) await tryExec('losetup', ['-d', line.split(':')[0]]);
  }
}
