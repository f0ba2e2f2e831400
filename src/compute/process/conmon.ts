// Starting conmon, the per-container monitor. conmon double-forks (so the container outlives the daemon), runs
// `runc create` (or `runc exec`), relays stdio to an attach socket and the k8s-file log, and writes the exit code.
// We talk to it over inherited descriptors, each named by an environment variable (conmon 2.1.6, verified):
//   _OCI_SYNCPIPE   conmon writes JSON lines {"data": N[, "message": "..."]}: first the pid (or -1 and runc's
//                   stderr when create/exec failed); for exec a second line carries the exit code.
//   _OCI_STARTPIPE  conmon blocks on a first read before forking; with --exec-attach its runtime child blocks on
//                   a second read before running `runc exec`, so the client can attach first.
//   _OCI_ATTACHPIPE (--exec-attach) conmon writes {"data": 0} once the attach socket listens.

import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { SiloError } from '../../common/errors.js';
import { SYSTEM_PATH } from '../../common/exec.js';
import { spawner } from '../../common/spawner.js';

export interface ConmonOptions {
  conmon: string;
  runc: string;
  runcRoot: string;
  /** Container id (runc's name); for exec still the container's id. */
  cid: string;
  /** Unique id of this monitor: container id, or the exec id. */
  cuuid: string;
  name: string;
  bundle: string;
  pidFile: string;
  conmonPidFile: string;
  /** k8s-file path, or undefined for no log (exec). */
  logPath?: string;
  /** conmon's own limit: past it conmon replaces the file with an empty one (the daemon rotates well before). */
  logSizeMax?: number;
  /** conmon writes `exit` (and `oom`) here. */
  persistDir: string;
  stdin: boolean;
  /** Keep the process' stdin open when an attached client disconnects (docker's StdinOnce off). */
  leaveStdinOpen?: boolean;
  tty: boolean;
  /** Set for exec: path of process.json. */
  execProcessSpec?: string;
}

/** Reads newline-delimited JSON messages from one of conmon's pipes. */
class SyncReader {
  private buf = '';
  private queue: { data: number; message?: string }[] = [];
  private waiters: ((m: { data: number; message?: string } | undefined) => void)[] = [];
  private ended = false;

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (s: string) => {
      this.buf += s;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        try {
          this.push(JSON.parse(line));
        } catch {
          this.push({ data: -1, message: `unparsable message from conmon: ${line}` });
        }
      }
    });
    const end = () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  private push(m: { data: number; message?: string }) {
    const w = this.waiters.shift();
    if (w) w(m);
    else this.queue.push(m);
  }

  /** Next message, or undefined when conmon closed the pipe without one. */
  next(): Promise<{ data: number; message?: string } | undefined> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((r) => this.waiters.push(r));
  }
}

/** runc's stderr is logrus text (`time=... level=error msg="..."`); keep the message, on one line. */
export function runtimeErrorMessage(raw: string): string {
  const msgs = [...raw.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\"/g, '"').replace(/\\\\/g, '\\'));
  const text = msgs.length ? msgs[msgs.length - 1] : raw;
  return text.trim().replace(/\s*\n\s*/g, '; ') || 'unknown error';
}

export interface ConmonHandle {
  /** The container (or exec) process' pid once runc create/exec succeeded. */
  pid: Promise<number>;
  /** exec only: resolves with the exit code conmon reports on the sync pipe. */
  exitCode?: Promise<number | undefined>;
  /** exec only: resolves once the attach socket exists; call `release` to let runc exec run. */
  attachReady?: Promise<void>;
  release?: () => void;
}

async function monitorPid(sp: NonNullable<ReturnType<typeof spawner>>, o: ConmonOptions): Promise<number> {
  const fail = (why: string) => new SiloError('Internal', 'SILO_RUNTIME', `create ${o.cid.slice(0, 12)}: ${why}`);
  let s;
  try {
    s = await sp.run({ path: o.conmon, argv0: o.conmon, args: buildConmonArgs(o), env: { PATH: SYSTEM_PATH, _OCI_SYNCPIPE: '3' }, cwd: o.bundle, monitor: true });
  } catch (e) {
    throw fail((e as Error).message.replace(/^spawn /, `spawn ${o.conmon} `));
  }
  const stderr = s.stderr.toString('utf8');
  const line = s.sync.toString('utf8').split('\n').map((l) => l.trim()).find(Boolean);
  if (!line) throw fail(runtimeErrorMessage(stderr.replace(/\[conmon:.\]:\s*/g, '')));
  let m: { data: number; message?: string };
  try {
    m = JSON.parse(line) as { data: number; message?: string };
  } catch {
    m = { data: -1, message: `unparsable message from conmon: ${line}` };
  }
  if (m.data < 0) throw fail(runtimeErrorMessage(m.message ?? stderr));
  return m.data;
}

export function buildConmonArgs(o: ConmonOptions): string[] {
  const a = [
    '--api-version', '1', '-c', o.cid, '-u', o.cuuid, '-n', o.name, '-r', o.runc, '-b', o.bundle,
    '-p', o.pidFile, '-P', o.conmonPidFile, '--persist-dir', o.persistDir,
    // The attach socket lives in the bundle itself (we keep bundle paths short enough for sun_path).
    '--full-attach',
    '--runtime-arg', `--root=${o.runcRoot}`, '--log-level', 'error',
    '-l', o.logPath ? `k8s-file:${o.logPath}` : 'none',
  ];
  if (o.logPath && o.logSizeMax && o.logSizeMax > 0) a.push('--log-size-max', String(o.logSizeMax));
  if (o.stdin) a.push('-i');
  if (o.stdin && o.leaveStdinOpen) a.push('--leave-stdin-open');
  if (o.tty) a.push('-t');
  if (o.execProcessSpec) a.push('-e', '--exec-attach', '--exec-process-spec', o.execProcessSpec);
  return a;
}

export function startConmon(o: ConmonOptions): ConmonHandle {
  const exec = !!o.execProcessSpec;
  // A container's monitor is started by the spawner, not by a fork of the daemon: it needs only its sync pipe's first
  // line. An exec's monitor talks over three pipes for its whole life, so it is still forked.
  const sp = exec ? undefined : spawner();
  if (sp) return { pid: monitorPid(sp, o) };
  const stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe', 'pipe'];
  const env: NodeJS.ProcessEnv = { PATH: SYSTEM_PATH, _OCI_SYNCPIPE: '3' };
  if (exec) {
    stdio.push('pipe', 'pipe');
    env._OCI_STARTPIPE = '4';
    env._OCI_ATTACHPIPE = '5';
  }
  const child: ChildProcess = spawn(o.conmon, buildConmonArgs(o), { stdio, env, cwd: o.bundle, detached: true });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (stderr += s));
  let spawnError: Error | undefined;
  child.on('error', (e) => (spawnError = e));
  child.unref();
  const sync = new SyncReader(child.stdio[3] as Readable);
  const fail = (why: string) =>
    new SiloError('Internal', 'SILO_RUNTIME', `${exec ? 'exec' : 'create'} ${o.cid.slice(0, 12)}: ${why}`);
  const conmonExit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  // What went wrong when the sync pipe closed without a message: conmon's own stderr, once it exited.
  const noMessage = async () => {
    await Promise.race([conmonExit, new Promise((r) => setTimeout(r, 2000))]);
    return fail(spawnError?.message ?? runtimeErrorMessage(stderr.replace(/\[conmon:.\]:\s*/g, '')) ?? 'conmon exited');
  };

  const pid = (async () => {
    const m = await sync.next();
    if (!m) throw await noMessage();
    if (m.data < 0) throw fail(runtimeErrorMessage(m.message ?? stderr));
    return m.data;
  })();

  if (!exec) {
    // Nothing more comes on the sync pipe for a container; drop our end so only conmon holds it.
    pid.finally(() => (child.stdio[3] as Readable).destroy()).catch(() => {});
    return { pid };
  }

  const start = child.stdio[4] as Writable;
  start.on('error', () => {});
  start.write('0'); // first read: conmon may fork now
  const attachReader = new SyncReader((child.stdio as unknown as Readable[])[5]);
  const attachReady = (async () => {
    const m = await attachReader.next();
    ((child.stdio as unknown as Readable[])[5]).destroy();
    if (!m) throw await noMessage();
  })();
  attachReady.catch(() => {}); // the caller races it against `pid`; never an unhandled rejection
  const release = () => {
    start.end('1'); // second read: the runtime child may run `runc exec`
  };
  const exitCode = (async () => {
    await pid;
    const m = await sync.next();
    (child.stdio[3] as Readable).destroy();
    return m?.data;
  })();
  exitCode.catch(() => {});
  return { pid, attachReady, release, exitCode };
}
