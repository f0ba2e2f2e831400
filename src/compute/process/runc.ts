// Thin wrapper over the runc CLI for the operations that do not go through conmon.

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
    await this.call(['start', id], id);
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

  /** Pids of every process in the container, as runc sees them. */
  async ps(id: string): Promise<number[]> {
    return JSON.parse((await this.call(['ps', '--format', 'json', id], id)) || '[]') as number[];
  }
}
