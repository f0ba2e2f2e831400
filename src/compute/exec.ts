// Processes beyond init (HcsCreateProcess): created, then started with a client attached before the process runs.

import { readdir, readFile } from 'node:fs/promises';
import { invalid, notFound, oneLine } from '../common/errors.js';
import { newId } from '../common/ids.js';
import type { EventBus } from '../common/events.js';
import { backendFor, type Backends } from './backend.js';
import { mergeEnv } from './resolve.js';
import { StdioSession, type StdioClient } from './sessions.js';
import type { ComputeSystemRecord, ExecRecord, ProcessParameters } from './types.js';

/** How long a finished process' record is kept for clients that ask for its exit code. */
const KEEP_FINISHED_MS = 5 * 60_000;

export class ExecManager {
  private readonly execs = new Map<string, ExecRecord>();
  /** The timers that forget finished records, by exec id. */
  private readonly expiry = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly backends: Backends,
    private readonly events: EventBus,
    private readonly running: (ref: string) => ComputeSystemRecord,
  ) {
    // A removed system's processes are of no more use to anyone: their records go with it, finished or not, rather
    // than each holding memory for minutes after (a daemon doing many short-lived containers piled them up).
    events.subscribe((e) => {
      if (e.Type === 'system' && e.Action === 'destroy') this.forgetSystem(e.Id);
    });
  }

  create(ref: string, p: ProcessParameters): ExecRecord {
    const rec = this.running(ref);
    if (!Array.isArray(p.CommandArgs) || p.CommandArgs.length === 0) throw invalid('no command specified');
    const x: ExecRecord = { Id: newId(), SystemId: rec.Id, Process: p, Running: false };
    this.execs.set(x.Id, x);
    this.events.publish('system', 'exec_create', rec.Id, { execID: x.Id }, rec.Name);
    return x;
  }

  get(execId: string): ExecRecord {
    const x = this.execs.get(execId);
    if (!x) throw notFound('exec instance', execId);
    return x;
  }

  /** Run the process; the client (if any) is connected before it starts. Resolves once it runs. */
  async start(execId: string, client?: StdioClient): Promise<StdioSession | undefined> {
    const x = this.get(execId);
    if (x.Running || x.ExitCode !== undefined) throw invalid(`exec ${execId.slice(0, 12)} has already been started`);
    const rec = this.running(x.SystemId);
    const p = x.Process;
    x.Running = true;
    let r;
    try {
      r = await backendFor(this.backends, rec.Document.Isolation, rec.Name).exec(rec.Id, {
        execId: x.Id,
        process: {
          args: p.CommandArgs,
          env: mergeEnv(rec.Init.Env, p.Environment ?? {}),
          cwd: p.WorkingDirectory || rec.Init.Cwd,
          user: p.User ?? rec.Init.User,
          tty: p.EmulateConsole ?? false,
          stdin: p.CreateStdInPipe ?? false,
          consoleSize: p.ConsoleSize ? { rows: p.ConsoleSize[0], cols: p.ConsoleSize[1] } : undefined,
        },
      });
    } catch (e) {
      // As dockerd: a process that cannot start has exited 126, or 127 when its command or a path is not there.
      x.Running = false;
      x.ExitCode = startExitCode(p.CommandArgs[0], oneLine(e));
      this.expire(x.Id);
      throw e;
    }
    x.Pid = r.pid;
    this.events.publish('system', 'exec_start', rec.Id, { execID: x.Id }, rec.Name);
    let session: StdioSession | undefined;
    if (client) {
      session = new StdioSession(client);
      session.connect(r.attachment);
    } else {
      r.attachment.onOutput(() => {});
    }
    const { Id: systemId, Name: name } = rec;
    void r.exit.then(
      (st) => {
        x.Running = false;
        x.ExitCode = st.exitCode;
        this.events.publish('system', 'exec_die', systemId, { execID: x.Id, exitCode: String(st.exitCode) }, name);
        this.expire(x.Id);
      },
      () => {
        x.Running = false;
        x.ExitCode = 126;
        this.expire(x.Id);
      },
    );
    return session;
  }

  /** Run a process to its end (a health probe): its exit code and its first 4 KiB of output; -1 past `timeoutMs`,
   *  when it is killed. */
  async run(ref: string, args: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const x = this.create(ref, { CommandArgs: args });
    let output = '';
    const exited = new Promise<number>((resolve) => {
      const off = this.events.subscribe((e) => {
        if (e.Action === 'exec_die' && e.Attributes.execID === x.Id) (off(), resolve(Number(e.Attributes.exitCode)));
      });
    });
    await this.start(x.Id, { wantStdin: false, onOutput: (_s, d) => void (output.length < 4096 && (output += d.toString())), onEnd: () => {} });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<number>((resolve) => (timer = setTimeout(() => resolve(-1), timeoutMs)));
    const exitCode = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    if (exitCode === -1) {
      await this.terminate(x.Id).catch(() => {});
      return { exitCode, output: `Health check exceeded timeout (${timeoutMs / 1000}s)` };
    }
    return { exitCode, output: output.slice(0, 4096) };
  }

  /** Keep a finished record a while for clients that ask for the exit code, then forget it. */
  private expire(execId: string): void {
    if (!this.execs.has(execId)) return; // its system is gone already
    this.expiry.set(
      execId,
      setTimeout(() => {
        this.execs.delete(execId);
        this.expiry.delete(execId);
      }, KEEP_FINISHED_MS).unref(),
    );
  }

  private forgetSystem(systemId: string): void {
    for (const [id, x] of this.execs) {
      if (x.SystemId !== systemId) continue;
      this.execs.delete(id);
      clearTimeout(this.expiry.get(id));
      this.expiry.delete(id);
    }
  }

  /** HcsTerminateProcess: SIGKILL the process and everything it started (a shell's children would outlive it). */
  async terminate(execId: string): Promise<void> {
    const x = this.get(execId);
    if (!x.Running || !x.Pid) return;
    for (const pid of await processTree(x.Pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
  }

  async resize(execId: string, rows: number, cols: number): Promise<void> {
    const x = this.get(execId);
    const rec = this.running(x.SystemId);
    await backendFor(this.backends, rec.Document.Isolation, rec.Name).resize(x.SystemId, x.Id, rows, cols);
  }
}

/** `root` and its descendants (host pids), from /proc's parent links. */
export async function processTree(root: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readFile(`/proc/${e}/stat`, 'utf8').catch(() => '');
    // The command (2nd field) may hold spaces and parentheses: the fields after its last ')' are fixed.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!ppid) continue;
    parents.set(ppid, [...(parents.get(ppid) ?? []), Number(e)]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(parents.get(p) ?? []));
  }
  return out;
}

export function startExitCode(cmd: string, message: string): number {
  const m = message.toLowerCase();
  if (m.includes(cmd.toLowerCase()) && (m.includes('executable file not found') || m.includes('no such file or directory'))) return 127;
  if (m.includes('not a directory')) return 127;
  return 126;
}
