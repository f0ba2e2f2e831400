// Named volumes: a directory per volume under <stateDir>/volumes/<name>/_data, as docker's local driver keeps them,
// with the volume's metadata beside it. Containers get them as bind mounts (MappedDirectories).

import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from '../../common/atomic.js';
import { DockerError, dockerConflict, dockerInvalid } from './errors.js';

export interface VolumeMeta {
  Name: string;
  Driver: 'local';
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: 'local';
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class Volumes {
  constructor(readonly root: string) {}

  private dir = (n: string) => join(this.root, n);
  dataPath = (n: string) => join(this.root, n, '_data');

  async list(): Promise<VolumeMeta[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const out: VolumeMeta[] = [];
    for (const n of names) {
      const m = await readJson<VolumeMeta>(join(this.dir(n), 'volume.json'));
      if (m) out.push(m);
    }
    return out;
  }

  async get(name: string): Promise<VolumeMeta> {
    const m = NAME.test(name) ? await readJson<VolumeMeta>(join(this.dir(name), 'volume.json')) : undefined;
    if (!m) throw new DockerError(404, `get ${name}: no such volume`);
    return m;
  }

  /** Create, or return the existing one of that name (docker's create is idempotent). */
  async create(name: string, labels: Record<string, string> = {}, opts: Record<string, string> = {}): Promise<VolumeMeta> {
    if (!NAME.test(name)) throw dockerInvalid(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    const existing = await readJson<VolumeMeta>(join(this.dir(name), 'volume.json'));
    if (existing) return existing;
    if (Object.keys(opts).length) throw dockerInvalid(`create ${name}: volume options are not supported by Silo's local driver`);
    await mkdir(this.dataPath(name), { recursive: true, mode: 0o755 });
    const m: VolumeMeta = { Name: name, Driver: 'local', CreatedAt: new Date().toISOString(), Labels: labels, Options: {}, Scope: 'local' };
    await writeJsonAtomic(join(this.dir(name), 'volume.json'), m);
    return m;
  }

  async remove(name: string, inUseBy: string[]): Promise<void> {
    await this.get(name);
    if (inUseBy.length) throw dockerConflict(`remove ${name}: volume is in use - [${inUseBy.join(', ')}]`);
    await rm(this.dir(name), { recursive: true, force: true });
  }

  /** Bytes used by the volume's files (for system df). */
  async size(name: string): Promise<number> {
    let total = 0;
    const walk = async (p: string) => {
      for (const e of await readdir(p, { withFileTypes: true }).catch(() => [])) {
        const q = join(p, e.name);
        if (e.isDirectory()) await walk(q);
        else total += (await stat(q).catch(() => ({ size: 0 }))).size;
      }
    };
    await walk(this.dataPath(name));
    return total;
  }
}
