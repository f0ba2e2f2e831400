// A real daemon per test file, with its own state dir, run dir and cgroup parent named silo-test-<rand>, driven
// through the real `silo` CLI; and a leak check for everything that carries that name.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { openNetworkService } from '../../src/network/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SILO_BIN = join(root, 'bin/silo');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class TestDaemon {
  readonly tag = `silo-test-${randomBytes(4).toString('hex')}`;
  readonly stateDir: string;
  readonly runDir = `/run/${this.tag}`;
  readonly socket = `${this.runDir}/silo.sock`;
  private proc?: ChildProcess;
  private output = '';

  /** `stateDir` puts the state elsewhere (a small filesystem the test mounted); teardown removes that dir too. */
  constructor(opts: { stateDir?: (tag: string) => string } = {}) {
    this.stateDir = opts.stateDir?.(this.tag) ?? `/var/lib/${this.tag}`;
  }

  /** The daemon's pid while it runs (for its memory figures). */
  get pid(): number | undefined {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null ? this.proc.pid : undefined;
  }

  /** Start (or restart) the daemon; `env` adds variables such as SILO_FAULT_POINTS. */
  async start(env: Record<string, string> = {}): Promise<void> {
    this.proc = spawn(process.execPath, [SILO_BIN, 'daemon', '--state-dir', this.stateDir, '--run-dir', this.runDir, '--cgroup-parent', this.tag], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.proc.stdout!.on('data', (b) => (this.output += b));
    this.proc.stderr!.on('data', (b) => (this.output += b));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`daemon exited: ${this.output}`);
      if (await canConnect(this.socket)) return;
      await sleep(50);
    }
    throw new Error(`daemon did not come up: ${this.output}`);
  }

  /** Time from spawn to the API answering, ms. */
  async startTimed(): Promise<number> {
    const t0 = Date.now();
    await this.start();
    return Date.now() - t0;
  }

  /** Resolves once the daemon process has exited (a fault point killed it); fails with its last lines after `ms`. */
  exited(ms = 120_000): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the daemon did not exit within ${ms} ms: ${this.output.split('\n').slice(-8).join('\n')}`)), ms);
      p.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  get logs(): string {
    return this.output;
  }

  /** SIGKILL the daemon: the containers must not notice. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await done;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await done;
  }

  /** Run the real CLI against this daemon. */
  silo(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
    return runProcess(process.execPath, [SILO_BIN, ...args], { ...opts, env: { SILO_HOST: `unix://${this.socket}` } });
  }

  /**
   * A test for lines of leaks() (or `ip` listings) that name the endpoint pool's objects: namespaces and endpoints the
   * network service made ahead for the next creates, which it owns (the daemon lists them once no refill runs).
   */
  async pooled(): Promise<(line: string) => boolean> {
    const r = await this.silo(['info', '--format', 'json']);
    const p = (JSON.parse(r.stdout) as { EndpointPool: { Namespaces: string[]; Endpoints: string[] } }).EndpointPool;
    const names = [...p.Namespaces, ...p.Endpoints];
    return (line) => names.some((n) => line.includes(n));
  }

  /** Remove every container, stop the daemon, delete its dirs; then report what is left with its tag. */
  async teardown(): Promise<string[]> {
    if (this.proc && this.proc.exitCode === null) {
      const ps = await this.silo(['ps', '-aq']);
      const ids = ps.stdout.split('\n').filter(Boolean);
      if (ids.length) await this.silo(['rm', '-f', ...ids]);
      await this.stop();
    }
    // The daemon's default network and table are kept across its restarts, like docker's bridge; the test made them.
    const net = await openNetworkService({ stateDir: join(this.stateDir, 'network'), runDir: join(this.runDir, 'network'), prefix: this.tag });
    await net.purge();
    await net.close();
    const left = leaks(this.tag);
    // The cgroup parent is the daemon's, like docker's "docker" parent; the test made it, so the test removes it.
    for (const ctl of readdirSync('/sys/fs/cgroup')) await rmdir(`/sys/fs/cgroup/${ctl}/${this.tag}`).catch(() => {});
    await rm(this.stateDir, { recursive: true, force: true });
    await rm(this.runDir, { recursive: true, force: true });
    return left;
  }
}

/** Kernel objects and processes that carry `tag`: mounts, loop devices, cgroups, monitors. */
export function leaks(tag: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(tag)) out.push(`mount: ${line.split(' ')[4]}`);
  const loops = execFileSync('losetup', ['-a'], { encoding: 'utf8' });
  for (const line of loops.split('\n')) if (line.includes(tag)) out.push(`loop: ${line}`);
  for (const ctl of readdirSync('/sys/fs/cgroup')) {
    if (existsSync(`/sys/fs/cgroup/${ctl}/${tag}`)) {
      const kids = readdirSync(`/sys/fs/cgroup/${ctl}/${tag}`, { withFileTypes: true }).filter((d) => d.isDirectory());
      if (kids.length) out.push(`cgroup: ${ctl}/${tag}/${kids.map((k) => k.name).join(',')}`);
    }
  }
  for (const line of execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n')) if (line.includes(`silo:${tag}:`)) out.push(`link: ${line.split(': ')[1]} ${line.match(/alias (\S+)/)?.[1] ?? ''}`);
  for (const line of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) if (line.includes(tag)) out.push(`netns: ${line}`);
  for (const line of execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n')) if (line.includes(tag)) out.push(`nft: ${line}`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(tag) && !cmd.includes(' daemon ')) out.push(`process ${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Run a program to its end with `input` on stdin; its output and exit code (killed after `timeoutMs`). */
export function runProcess(cmd: string, argv: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, argv, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('error', rej);
    p.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? 128, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((r) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      r(true);
    });
    s.once('error', () => r(false));
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
