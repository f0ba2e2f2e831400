// The classic builder's layer cache: key = parent image id + the instruction as evaluated (+ a hash of the sources
// for COPY/ADD) → the image that step produced. Kept as one JSON file; a hit is used only if the image still exists.

import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { readJson, sweepTempFiles, writeJsonAtomic } from '../../../common/atomic.js';

export class BuildCache {
  private map = new Map<string, string>();

  constructor(private readonly file: string) {}

  async load(): Promise<void> {
    await sweepTempFiles(dirname(this.file));
    const m = await readJson<Record<string, string>>(this.file);
    this.map = new Map(Object.entries(m ?? {}));
  }

  static key(parent: string, instruction: string, sources = ''): string {
    return createHash('sha256').update(`${parent}\n${instruction}\n${sources}`).digest('hex');
  }

  get(key: string): string | undefined {
    return this.map.get(key);
  }

  async set(key: string, imageId: string): Promise<void> {
    this.map.set(key, imageId);
    await writeJsonAtomic(this.file, Object.fromEntries(this.map));
  }

  /** Forget entries whose image is gone (build prune, rmi). */
  async prune(exists: (id: string) => Promise<boolean>): Promise<number> {
    let n = 0;
    for (const [k, v] of [...this.map]) {
      if (!(await exists(v))) {
        this.map.delete(k);
        n++;
      }
    }
    await writeJsonAtomic(this.file, Object.fromEntries(this.map));
    return n;
  }
}
