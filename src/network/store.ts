// One JSON file per object under <stateDir>/<kind>/<id>.json, written atomically, so a crash leaves each object
// either old or new. The whole state is loaded once at open and kept in memory; every mutation writes through.

import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, removeFile, sweepTempFiles, writeJsonAtomic } from '../common/atomic.js';

export type Kind = 'networks' | 'endpoints' | 'namespaces' | 'loadbalancers' | 'ipam';

export class Store {
  constructor(private readonly dir: string) {}

  private path(kind: Kind, id: string): string {
    return join(this.dir, kind, `${id}.json`);
  }

  async put(kind: Kind, id: string, value: unknown): Promise<void> {
    await writeJsonAtomic(this.path(kind, id), value);
  }

  async remove(kind: Kind, id: string): Promise<void> {
    removeFile(this.path(kind, id));
  }

  async loadAll<T>(kind: Kind): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    await sweepTempFiles(join(this.dir, kind));
    let names: string[] = [];
    try {
      names = await readdir(join(this.dir, kind));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const n of names) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      const v = await readJson<T>(join(this.dir, kind, n));
      if (v !== undefined) out.set(n.slice(0, -5), v);
    }
    return out;
  }

  /** The temp files of interrupted writes of the service's own records (loadAll sweeps each kind's). */
  async sweep(): Promise<void> {
    await sweepTempFiles(this.dir);
  }

  async getMeta<T>(name: string): Promise<T | undefined> {
    return readJson<T>(join(this.dir, `${name}.json`));
  }

  async putMeta(name: string, value: unknown): Promise<void> {
    await writeJsonAtomic(join(this.dir, `${name}.json`), value);
  }

  async removeAll(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
