// The one writer of compute system records: one JSON document per system, written atomically. Reads hand out
// copies: a caller changes a record only by saving it (under the system's lock), never by holding on to it.

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, removeFile, sweepTempFiles, writeJsonAtomic } from '../common/atomic.js';
import { invalid, notFound } from '../common/errors.js';
import type { ComputeSystemRecord } from './types.js';
import { byCodeUnits } from '../common/order.js';

export class SystemStore {
  private readonly byId = new Map<string, ComputeSystemRecord>();

  constructor(private readonly dir: string) {}

  async load(): Promise<ComputeSystemRecord[]> {
    await sweepTempFiles(this.dir);
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    for (const f of names) {
      if (!/^[0-9a-f]{64}\.json$/.test(f)) continue;
      const r = await readJson<ComputeSystemRecord>(join(this.dir, f));
      if (r) this.byId.set(r.Id, r);
    }
    return this.all();
  }

  all(): ComputeSystemRecord[] {
    return [...this.byId.values()].sort((a, b) => byCodeUnits(b.Created, a.Created)).map(copy);
  }

  /** Whether any record satisfies `pred` (which must not keep or change what it is shown): no copies made. */
  some(pred: (r: Readonly<ComputeSystemRecord>) => boolean): boolean {
    for (const r of this.byId.values()) if (pred(r)) return true;
    return false;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  nameTaken(name: string): boolean {
    for (const r of this.byId.values()) if (r.Name === name) return true;
    return false;
  }

  /** By full id, name, or unique id prefix, as docker resolves them. */
  find(ref: string): ComputeSystemRecord {
    const name = ref.replace(/^\//, '');
    const exact = this.byId.get(ref);
    if (exact) return copy(exact);
    for (const r of this.byId.values()) if (r.Name === name) return copy(r);
    if (/^[0-9a-f]+$/.test(ref)) {
      const hits = [...this.byId.values()].filter((r) => r.Id.startsWith(ref));
      if (hits.length === 1) return copy(hits[0]);
      if (hits.length > 1) throw invalid(`multiple containers found with provided prefix: ${ref}`);
    }
    throw notFound('container', ref);
  }

  /** `durable: false` only where a durable step follows at once (an auto-removed system's exit, then its removal). */
  async save(r: ComputeSystemRecord, o: { durable?: boolean } = {}): Promise<void> {
    await writeJsonAtomic(join(this.dir, `${r.Id}.json`), r, o);
    this.byId.set(r.Id, copy(r));
  }

  /**
   * Gone for every reader while its file stays: a removal whose intent is on disk finishes after the answer
   * (remove() then deletes the file; a crash meanwhile leaves record and intent for the next daemon to finish).
   */
  forget(id: string): void {
    this.byId.delete(id);
  }

  /** Back in view: a removal after the answer that failed (its file was never deleted). */
  keep(r: ComputeSystemRecord): void {
    this.byId.set(r.Id, copy(r));
  }

  async remove(id: string): Promise<void> {
    removeFile(join(this.dir, `${id}.json`));
    this.byId.delete(id);
  }
}

const copy = (r: ComputeSystemRecord): ComputeSystemRecord => structuredClone(r);
