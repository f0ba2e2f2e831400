// A dockerd of our own (Debian's docker.io; there is no systemd here): data root, exec root, pidfile and socket in the
// bench's directories, cgroups under `<tag>-docker`, and a bridge we create (`<tag>d`, 10.231.0.1/24, outside the
// ranges Silo picks) so nothing is named docker0. It runs its own containerd below the exec root. It can be restarted
// with the userland proxy off for the networking rows; the data root (and so the loaded image) survives that.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { onCleanup } from '../lib/cleanup.js';
import { exec, sleep, tryExec, type ExecOpts, type Out } from '../lib/proc.js';
import { canConnect } from './silo.js';

export const DOCKER_CLI = '/usr/bin/docker';
export const DOCKER_BRIDGE_CIDR = '10.231.0.1/24';

export interface Dockerd {
  socket: string;
  execRoot: string;
  userlandProxy: boolean;
  pid(): number;
  /** containerd started by this dockerd (a child of it). */
  containerdPid(): Promise<number | undefined>;
  cli(args: string[], o?: ExecOpts): Promise<Out>;
  stop(): Promise<void>;
}

export async function createBridge(name: string, cidr: string): Promise<void> {
  await tryExec('ip', ['link', 'del', name]);
  await exec('ip', ['link', 'add', name, 'type', 'bridge']);
  onCleanup(`bridge ${name}`, () => tryExec('ip', ['link', 'del', name]));
  await exec('ip', ['addr', 'add', cidr, 'dev', name]);
  await exec('ip', ['link', 'set', name, 'up']);
}

/** `iptables: false` leaves the host's iptables and ip_forward alone (no published ports nor NAT then): for a peer that only runs
 *  `run --rm`, beside a bench/run.ts whose dockerd owns the shared DOCKER chains. */
export async function startDockerd(tag: string, dataRoot: string, runDir: string, userlandProxy: boolean, iptables = true): Promise<Dockerd> {
  const execRoot = join(runDir, 'exec');
  const socket = join(runDir, 'docker.sock');
  const pidfile = join(runDir, 'dockerd.pid');
  await mkdir(dataRoot, { recursive: true });
  await mkdir(runDir, { recursive: true });
  let proc: ChildProcess | undefined;
  let output = '';
  const host = `unix://${socket}`;
  const d: Dockerd = {
    socket, execRoot, userlandProxy,
    pid: () => proc?.pid ?? -1,
    async containerdPid() {
      const r = await tryExec('pgrep', ['-P', String(d.pid()), 'containerd']);
      return Number(r.stdout.split('\n')[0]) || undefined;
    },
    cli: (args, o = {}) => exec(DOCKER_CLI, ['-H', host, ...args], o),
    async stop() {
      if (!proc || proc.exitCode !== null) return;
      // Containers first, so the clean stop below has nothing to kill and tears its network down in order.
      const ids = (await tryExec(DOCKER_CLI, ['-H', host, 'ps', '-aq'])).stdout.split('\n').filter(Boolean);
      for (let i = 0; i < ids.length; i += 20) await tryExec(DOCKER_CLI, ['-H', host, 'rm', '-f', ...ids.slice(i, i + 20)], { timeoutMs: 120_000 });
      const p = proc;
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([done, sleep(30_000)]);
      if (p.exitCode === null) p.kill('SIGKILL');
    },
  };
  onCleanup(`dockerd (${userlandProxy ? 'userland proxy' : 'no userland proxy'})`, () => d.stop());
  const args = [
    '--data-root', dataRoot, '--exec-root', execRoot, '--pidfile', pidfile, '-H', host,
    '--bridge', `${tag}d`, `--iptables=${iptables}`, ...(iptables ? [] : ['--ip-forward=false']), `--userland-proxy=${userlandProxy}`,
    '--cgroup-parent', `${tag}-docker`, '--log-level', 'error',
  ];
  proc = spawn('dockerd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (b) => (output += b));
  proc.stderr!.on('data', (b) => (output += b));
  const deadline = Date.now() + 60_000;
  while (!(await canConnect(socket)) || (await tryExec(DOCKER_CLI, ['-H', host, 'version'])).code !== 0) {
    if (proc.exitCode !== null) throw new Error(`dockerd exited: ${output.trim().slice(-300)}`);
    if (Date.now() > deadline) throw new Error(`dockerd did not come up: ${output.trim().slice(-300)}`);
    await sleep(100);
  }
  return d;
}
