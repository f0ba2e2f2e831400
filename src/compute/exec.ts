// Processes beyond init (HcsCreateProcess): created, then started with a client attached before the process runs.

import { invalid, notFound } from '../common/errors.js';
import { newId } from '../common/ids.js';
import type { EventBus } from '../host/events.js';
import type { IsolationBackend } from './process/types.js';
import { mergeEnv } from './resolve.js';
import { StdioSession, type StdioClient } from './sessions.js';
import type { ComputeSystemRecord, ExecRecord, ProcessParameters } from './types.js';

export class ExecManager {
  private readonly execs = new Map<string, ExecRecord>();

  constructor(
    private readonly backend: IsolationBackend,
    private readonly events: EventBus,
    private readonly running: (ref: string) => ComputeSystemRecord,
  ) {}

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
      r = await this.backend.exec(rec.Id, {
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
      x.Running = false;
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
    void r.exit.then(
      (st) => {
        x.Running = false;
        x.ExitCode = st.exitCode;
        this.events.publish('system', 'exec_die', rec.Id, { execID: x.Id, exitCode: String(st.exitCode) }, rec.Name);
        // Keep finished exec records a while for clients that ask for the exit code, then forget them.
        setTimeout(() => this.execs.delete(x.Id), 5 * 60_000).unref();
      },
      () => {
        x.Running = false;
        x.ExitCode = 126;
      },
    );
    return session;
  }

  async resize(execId: string, rows: number, cols: number): Promise<void> {
    const x = this.get(execId);
    await this.backend.resize(x.SystemId, x.Id, rows, cols);
  }
}
