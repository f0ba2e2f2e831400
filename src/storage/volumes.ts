// Named volumes, owned by the storage service: a directory per volume, <dir>/<name>/_data, as docker's local driver
// keeps them, with the volume's record beside it (<dir>/<name>/volume.json, written atomically after the data
// directory). Containers get them as bind mounts; which containers use one is the front door's knowledge, handed in
// on removal. At open, a volume directory without its record (a create interrupted between the two) is removed.

import { mkdir, readdir, realpath, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import { readJson, writeJsonAtomic } from '../common/atomic.js';
import { conflict, invalid, notFound } from '../common/errors.js';

export interface Volume {
  Name: string;
  Driver: 'local';
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: 'local';
  /** Host path of the volume's data. */
  Mountpoint: string;
}

type Record_ = Omit<Volume, 'Mountpoint'>;

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class VolumeStore {
  constructor(readonly dir: string) {}

  private record = (n: string) => join(this.dir, n, 'volume.json');
  private dataPath = (n: string) => join(this.dir, n, '_data');
  private view = (r: Record_): Volume => ({ ...r, Mountpoint: this.dataPath(r.Name) });

  /** Remove what an interrupted create or remove left: a volume directory without a record, temp files. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o711 });
    for (const n of await readdir(this.dir)) {
      const rec = await readJson<Record_>(this.record(n)).catch(() => undefined);
      if (!rec || rec.Name !== n) await rm(join(this.dir, n), { recursive: true, force: true });
      else for (const f of await readdir(join(this.dir, n))) if (f.endsWith('.tmp')) await rm(join(this.dir, n, f), { force: true });
    }
  }

  /** Where a volume of that name keeps (or would keep) its data: what containers mount. */
  volumePath(name: string): string {
    return this.dataPath(name);
  }

  /** The name of the volume whose data `hostPath` is, or is inside of (a subpath); undefined for any other path. */
  volumeAt(hostPath: string): string | undefined {
    const [name, data] = relative(this.dir, hostPath).split(sep);
    return data === '_data' && NAME.test(name) ? name : undefined;
  }

  async listVolumes(): Promise<Volume[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: Volume[] = [];
    for (const n of names) {
      const r = NAME.test(n) ? await readJson<Record_>(this.record(n)).catch(() => undefined) : undefined;
      if (r) out.push(this.view(r));
    }
    return out;
  }

  async getVolume(name: string): Promise<Volume> {
    const r = NAME.test(name) ? await readJson<Record_>(this.record(name)) : undefined;
    if (!r) throw notFound('volume', name);
    return this.view(r);
  }

  /**
   * `subpath` of a volume (docker's volume-subpath), normalised: relative, no '..', present, and inside the volume once
   * its symlinks are resolved, so a mistake is refused at create. This check alone cannot hold (a container that
   * writes the volume may swap in a symlink later): the compute service resolves it again inside the volume, on an
   * fd, when it mounts it.
   */
  async volumeSubpath(name: string, subpath: string): Promise<string> {
    const v = await this.getVolume(name);
    const rel = posix.normalize(subpath);
    if (!subpath || isAbsolute(subpath) || rel === '..' || rel.startsWith('../')) throw invalid(`volume subpath ${JSON.stringify(subpath)} must be a relative path inside the volume`);
    const base = await realpath(v.Mountpoint);
    const full = await realpath(join(base, rel)).catch(() => {
      throw invalid(`volume subpath ${subpath} does not exist in volume ${name}`);
    });
    if (full !== base && !full.startsWith(base + '/')) throw invalid(`volume subpath ${subpath} of ${name} leads out of the volume`);
    return rel;
  }

  /** Create, or return the existing one of that name (docker's create is idempotent). Options are refused. */
  async createVolume(name: string, o: { labels?: Record<string, string>; options?: Record<string, string> } = {}): Promise<Volume> {
    if (!NAME.test(name)) throw invalid(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    const existing = await readJson<Record_>(this.record(name));
    if (existing) return this.view(existing);
    if (Object.keys(o.options ?? {}).length) throw invalid(`create ${name}: volume options are not supported by Silo's local driver`);
    await mkdir(this.dataPath(name), { recursive: true, mode: 0o755 });
    const r: Record_ = { Name: name, Driver: 'local', CreatedAt: new Date().toISOString(), Labels: o.labels ?? {}, Options: {}, Scope: 'local' };
    await writeJsonAtomic(this.record(name), r);
    return this.view(r);
  }

  /** Remove a volume and its data; Conflict while `inUseBy` names containers. */
  async removeVolume(name: string, o: { inUseBy?: string[] } = {}): Promise<void> {
    await this.getVolume(name);
    const users = o.inUseBy ?? [];
    if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
    // The record first: a crash mid-delete leaves a directory without a record, which the next open removes.
    await rm(this.record(name), { force: true });
    await rm(join(this.dir, name), { recursive: true, force: true });
  }

  /** Bytes used by the volume's files (for system df). */
  async volumeSize(name: string): Promise<number> {
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
