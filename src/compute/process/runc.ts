// Thin wrapper over the runc CLI for the operations that do not go through conmon.

import { constants, existsSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { removeFile } from '../../common/atomic.js';
import { run } from '../../common/exec.js';
import { SiloError, badState, notFound } from '../../common/errors.js';
import { runtimeErrorMessage } from './conmon.js';

export interface RuncState { id: string; pid: number; status: string; bundle: string; rootfs: string }

export class Runc {
  constructor(readonly bin: string, readonly root: string) {}

  private async call(args: string[], id: string, timeoutMs = 30000): Promise<string> {
    const r = await run(this.bin, ['--root', this.root, ...args], { allowFail: true, timeoutMs });
    if (r.code === 0) return r.stdout;
    const msg = runtimeErrorMessage(r.stderr || r.stdout);
    if (/does not exist|not found/i.test(msg)) throw notFound('container', id);
    if (/not running|is paused|not paused|stopped|cannot .* in state|container's cgroup is not/i.test(msg)) throw badState(`${args[0]} ${id.slice(0, 12)}: ${msg}`);
    throw new SiloError('Internal', 'SILO_RUNTIME', `runc ${args[0]} ${id.slice(0, 12)}: ${msg}`);
  }

  /** runc's view, or undefined when runc has no state for the id. */
  async state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse(await this.call(['state', id], id)) as RuncState;
    } catch (e) {
      if (e instanceof SiloError && e.class === 'NotFound') return undefined;
      throw e;
    }
  }

  async start(id: string): Promise<void> {
    if (!(await this.startByFifo(id))) await this.call(['start', id], id);
  }

  /**
   * What `runc start` does, without forking the daemon for it: a created container's init waits to open
   * <root>/<id>/exec.fifo for writing; a reader lets it write one byte and exec the user's process, and the fifo is
   * removed (runc reads "created" from its presence). False when there is no fifo or no byte came: then `runc start`
   * itself runs, and reports the state or the error in its own words.
   */
  private async startByFifo(id: string): Promise<boolean> {
    const fifo = join(this.root, id, 'exec.fifo');
    // Non-blocking: a blocking open would hold a thread-pool thread forever if the init had died.
    const fh = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined);
    if (!fh) return false;
    let got = false;
    try {
      const b = Buffer.alloc(1);
      for (let delay = 0, spent = 0; !got && spent < 10_000; spent += delay, delay = Math.min(delay * 2 || 1, 50)) {
        if (delay) await new Promise((r) => setTimeout(r, delay));
        // 0 bytes: the init has not opened its end yet; EAGAIN: opened, not written yet.
        got = await fh.read(b, 0, 1, null).then((r) => r.bytesRead === 1, (e: NodeJS.ErrnoException) => (e.code === 'EAGAIN' ? false : Promise.reject(e)));
      }
    } finally {
      await fh.close();
    }
    if (got) removeFile(fifo);
    return got;
  }

  async kill(id: string, signal: string, all = false): Promise<void> {
    await this.call(['kill', ...(all ? ['--all'] : []), id, signal.replace(/^SIG/i, '').toUpperCase()], id);
  }

  async pause(id: string): Promise<void> {
    await this.call(['pause', id], id);
  }

  async resume(id: string): Promise<void> {
    await this.call(['resume', id], id);
  }

  async update(id: string, flags: string[]): Promise<void> {
    if (flags.length) await this.call(['update', ...flags, id], id);
  }

  async delete(id: string, force: boolean): Promise<void> {
    try {
      await this.call(['delete', ...(force ? ['--force'] : []), id], id);
    } catch (e) {
      if (e instanceof SiloError && e.class === 'NotFound') return;
      throw e;
    }
  }

  /**
   * What `runc delete` does for a started container with no process left, without a process of its own (the start of
   * a Go runtime: ~10 ms of CPU and ~15 ms of the client's wait per removal): its state directory goes. Its cgroups
   * are the caller's to remove (the job), as after a delete; Silo's specs have no hooks for runc to run. False, and
   * nothing done, unless runc holds a state for it and its init has passed the exec FIFO (a created container's init
   * still waits there): the caller then runs `runc delete`.
   */
  forgetStopped(id: string): boolean {
    const dir = join(this.root, id);
    if (!existsSync(join(dir, 'state.json')) || existsSync(join(dir, 'exec.fifo'))) return false;
    rmSync(dir, { recursive: true, force: true });
    return true;
  }

  /** Pids of every process in the container, as runc sees them. */
  async ps(id: string): Promise<number[]> {
    return JSON.parse((await this.call(['ps', '--format', 'json', id], id)) || '[]') as number[];
  }
}
