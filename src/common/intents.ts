// Intents of multi-step operations: recorded before the first kernel change, cleared after the last. What the next
// start of the daemon finds here was interrupted, and is completed or rolled back then.

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, removeFile, sweepTempFiles, writeJsonAtomic } from './atomic.js';
import { newId } from './ids.js';
import { byCodeUnits } from './order.js';

export interface Intent {
  Id: string;
  Op: string;
  Target: string;
  Started: string;
}

export class IntentLog {
  constructor(private readonly dir: string) {}

  /**
   * Record the intent; the returned function clears it once the operation has finished or rolled back. `durable:
   * false` for an operation whose every step is a kernel object (mounts, processes) that a machine crash undoes too.
   */
  async begin(op: string, target: string, o: { durable?: boolean } = {}): Promise<() => Promise<void>> {
    const it: Intent = { Id: newId(), Op: op, Target: target, Started: new Date().toISOString() };
    const path = join(this.dir, `${it.Id}.json`);
    await writeJsonAtomic(path, it, o);
    return async () => removeFile(path);
  }

  /** Run `fn` under an intent that is cleared whether it succeeds or fails (its own rollback ran). */
  async with<T>(op: string, target: string, fn: () => Promise<T>): Promise<T> {
    const done = await this.begin(op, target);
    try {
      return await fn();
    } finally {
      await done();
    }
  }

  async pending(): Promise<Intent[]> {
    await sweepTempFiles(this.dir);
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: Intent[] = [];
    for (const n of names) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      const it = await readJson<Intent>(join(this.dir, n)).catch(() => undefined);
      if (it) out.push(it);
      else await rm(join(this.dir, n), { force: true }); // torn or unreadable: nothing to act on
    }
    return out.sort((a, b) => byCodeUnits(a.Started, b.Started));
  }

  clear(id: string): Promise<void> {
    removeFile(join(this.dir, `${id}.json`));
    return Promise.resolve();
  }
}
