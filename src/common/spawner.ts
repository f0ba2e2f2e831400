// The daemon's side of silo-spawner (spawner/spawner.c): host tools run to completion are started by that small
// long-lived process instead of a fork of the daemon (whose ~100 MB address space each fork copies the page tables
// of, blocking the event loop). Started on first use; when it is missing (no C compiler at setup) or gone, run()
// spawns as before.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SPAWNER_SOURCE = resolve(REPO, 'src/common/spawner/spawner.c');
export const SPAWNER_BINARY = process.env.SILO_SPAWNER ?? resolve(REPO, 'build/spawner/silo-spawner');

export interface Spawned {
  /** Exit status; 128 when a signal ended it (as run() reported a signal before). */
  code: number;
  signal?: NodeJS.Signals;
  stdout: Buffer;
  stderr: Buffer;
  /** A monitor's: the first line of its sync pipe (fd 3), or what came before that pipe ended. */
  sync: Buffer;
}

export interface SpawnRequest {
  path: string;
  argv0: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  timeoutMs?: number;
  /**
   * A monitor that daemonizes (conmon): stdin and stdout /dev/null, a session of its own, fd 3 a pipe whose first line
   * comes back as `sync`; answered once the monitor's first process exited and that line came (spawner.c says more).
   */
  monitor?: boolean;
  /** `path` names one of the spawner's builtins (mount, umount), run in a fork of it; exit 125: not a form it has. */
  builtin?: boolean;
}

const errnoName = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));
const signalName = new Map(Object.entries(constants.signals).map(([k, v]) => [v, k as NodeJS.Signals]));

class Spawner {
  private readonly pending = new Map<number, { resolve: (s: Spawned) => void; reject: (e: Error) => void }>();
  private next = 1;
  private buf: Buffer = Buffer.alloc(0);
  private dead = false;

  constructor(private readonly proc: ChildProcess) {
    proc.stdout!.on('data', (b: Buffer) => this.onData(b));
    const gone = () => this.fail(new Error('the spawner exited'));
    proc.on('exit', gone);
    proc.on('error', gone);
    proc.stdin!.on('error', gone);
    this.idle();
  }

  get usable(): boolean {
    return !this.dead;
  }

  run(r: SpawnRequest): Promise<Spawned> {
    const id = this.next++;
    const input = r.input === undefined ? Buffer.alloc(0) : Buffer.from(r.input);
    const env = Object.entries(r.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    const strs = Buffer.from([r.path, r.cwd ?? '', r.argv0, ...r.args, ...env].map((s) => `${s}\0`).join(''));
    const head = Buffer.alloc(28);
    head.writeUInt32LE(24 + strs.length + input.length, 0);
    head.writeUInt32LE(id, 4);
    head.writeUInt32LE(r.timeoutMs ?? 0, 8);
    head.writeUInt32LE(1 + r.args.length, 12);
    head.writeUInt32LE(env.length, 16);
    head.writeUInt32LE(input.length, 20);
    head.writeUInt32LE((r.monitor ? 1 : 0) | (r.builtin ? 2 : 0), 24);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.busy();
      this.proc.stdin!.write(Buffer.concat([head, strs, input]));
    });
  }

  private onData(b: Buffer): void {
    try {
      this.read(b);
    } catch (e) {
      // An answer this code cannot read (a binary of another protocol): the spawner is dropped, never the daemon, and
      // not started again: tools are forked from now on.
      missing = true;
      this.buf = Buffer.alloc(0);
      this.proc.kill('SIGKILL');
      this.fail(new Error(`the spawner's answer could not be read (${(e as Error).message})`));
    }
  }

  private read(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32LE(off);
      if (this.buf.length - off - 4 < len) break;
      const m = this.buf.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      const id = m.readUInt32LE(0);
      const code = m.readInt32LE(4);
      const sig = m.readInt32LE(8);
      const err = m.readInt32LE(12);
      const ol = m.readUInt32LE(16);
      const el = m.readUInt32LE(20);
      const sl = m.readUInt32LE(24);
      const p = this.pending.get(id);
      if (!p) continue;
      this.pending.delete(id);
      if (code === -1) {
        p.reject(Object.assign(new Error(`spawn ${errnoName.get(-err) ?? errnoName.get(err) ?? `errno ${err}`}`), { code: errnoName.get(err) }));
      } else {
        const signal = sig ? signalName.get(sig) : undefined;
        const at = 28 + ol + el;
        p.resolve({ code: signal ? 128 : code, signal, stdout: Buffer.from(m.subarray(28, 28 + ol)), stderr: Buffer.from(m.subarray(28 + ol, at)), sync: Buffer.from(m.subarray(at, at + sl)) });
      }
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off));
    if (!this.pending.size) this.idle();
  }

  private fail(e: Error): void {
    this.dead = true;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  // The spawner keeps no process alive by itself: a daemon or test that is otherwise done may exit.
  private idle(): void {
    this.proc.unref();
    (this.proc.stdout as unknown as { unref(): void }).unref();
    (this.proc.stdin as unknown as { unref(): void }).unref();
  }

  private busy(): void {
    this.proc.ref();
    (this.proc.stdout as unknown as { ref(): void }).ref();
    (this.proc.stdin as unknown as { ref(): void }).ref();
  }
}

let shared: Spawner | undefined;
let missing = false;

/**
 * Whether the default binary was built from an older source than the one beside it: its protocol may differ from this
 * code's, so it is not used (scripts/setup.sh rebuilds it, as it does whenever the source is newer).
 */
function stale(): boolean {
  if (process.env.SILO_SPAWNER) return false;
  const built = statSync(SPAWNER_BINARY, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const source = statSync(SPAWNER_SOURCE, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return built < source;
}

/**
 * The running spawner, started on first use; undefined when it is not built, older than its source, or turned off
 * (SILO_SPAWNER=off).
 */
export function spawner(): Spawner | undefined {
  if (shared?.usable) return shared;
  if (missing || process.env.SILO_SPAWNER === 'off' || !existsSync(SPAWNER_BINARY) || stale()) {
    missing = true;
    return undefined;
  }
  // Its stderr is the daemon's; no environment of its own (each request carries the tool's).
  const proc = spawn(SPAWNER_BINARY, [], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
  shared = new Spawner(proc);
  return shared;
}
