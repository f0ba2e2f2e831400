// Per-container roots, described: a sparse ext4 image (root/scratch/<id>.img) is the writable scratch, so its size is
// a hard cap (writes past it get ENOSPC inside the container; the host disk never fills), over the image's read-only
// layers. Storage makes the image and describes the root; the container's isolation backend mounts it.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm, stat, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, removeFile, sweepTempFiles, writeJsonAtomic } from '../common/atomic.js';
import { conflict, invalid } from '../common/errors.js';
import { run } from '../common/exec.js';
import { hexOf } from './digest.js';
import { attachLoop, rmdirQuiet, unmountAll } from '../common/loop.js';
import { strayMounts, unknownId, type Finding } from '../common/leaks.js';
import { formatScratch, ScratchPool } from './scratch-pool.js';
import type { RootDescription } from './types.js';

export interface RootMeta {
  imageId: string;
  /** Chain IDs of the image's layers, bottom first; keeps them from being garbage-collected. */
  chainIds: string[];
  scratchBytes: number;
  /** A tmpfs the backend mounts: no image file, only this record (which keeps the layers from being collected). */
  inMemory?: boolean;
}

export const MIN_SCRATCH = 16 * 1024 * 1024;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class Scratch {
  readonly dir: string;
  readonly pool: ScratchPool;

  constructor(
    root: string,
    private readonly runDir: string,
    private readonly layersDir: string,
  ) {
    this.dir = join(root, 'scratch');
    this.pool = new ScratchPool(join(root, 'scratch-pool'));
  }

  async init(): Promise<void> {
    for (const d of [this.dir, this.runDir, join(this.runDir, 'scratch')]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700); // a scratch mounted for a commit holds setuid files: host users must not reach them
    }
    await sweepTempFiles(this.dir);
    await this.pool.init();
  }

  check(id: string): void {
    if (!ID.test(id)) throw invalid(`invalid container id "${id}"`);
  }

  image = (id: string) => join(this.dir, `${id}.img`);
  metaFile = (id: string) => join(this.dir, `${id}.json`);

  meta(id: string): Promise<RootMeta | undefined> {
    return readJson<RootMeta>(this.metaFile(id));
  }

  async ids(): Promise<string[]> {
    // Images, and the records of in-memory scratches (which have no image).
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.img') || n.endsWith('.json')).map((n) => n.replace(/\.(img|json)$/, ''));
    return [...new Set(names)];
  }

  async allMeta(): Promise<RootMeta[]> {
    const out: RootMeta[] = [];
    for (const id of await this.ids()) {
      const m = await this.meta(id);
      if (m) out.push(m);
    }
    return out;
  }

  /** Make the scratch image (once); nothing is mounted. `chainIds` bottom first. Caller serialises per id.
   *  Crash-safe: an image without its meta record was never finished and is made again. */
  async prepare(id: string, meta: RootMeta): Promise<RootDescription['scratch']> {
    this.check(id);
    const old = await this.meta(id);
    if (old && old.imageId !== meta.imageId) {
      throw conflict(`container ${id} already has a scratch made for image ${old.imageId}`);
    }
    if (meta.chainIds.length === 0) throw invalid('image has no layers');
    const file = this.image(id);
    if (old?.inMemory ?? meta.inMemory) {
      if (!old) await writeJsonAtomic(this.metaFile(id), meta);
      return { path: '', format: 'tmpfs', sizeBytes: (old ?? meta).scratchBytes };
    }
    if (!old) {
      if (meta.scratchBytes < MIN_SCRATCH) throw invalid(`scratch size must be at least ${MIN_SCRATCH} bytes`);
      removeFile(file); // one a crash left half-made
      try {
        if (!(await this.pool.take(meta.scratchBytes, file))) await formatScratch(file, meta.scratchBytes);
        await writeJsonAtomic(this.metaFile(id), meta);
      } catch (e) {
        await rm(file, { force: true });
        throw e;
      }
    }
    return { path: file, format: 'ext4', sizeBytes: (old ?? meta).scratchBytes };
  }

  /**
   * Loop devices on a scratch image of no container in use (or on one deleted while attached), and commit mounts left
   * under the run dir: for `silo doctor`.
   */
  async leaks(inUse: (id: string) => boolean): Promise<Finding[]> {
    const out = await strayMounts([this.runDir], inUse, 'storage');
    const loops = JSON.parse((await run('losetup', ['-J', '-l'], { allowFail: true })).stdout || '{"loopdevices":[]}') as { loopdevices: { name: string; 'back-file': string | null }[] };
    const dir = await realpath(this.dir).catch(() => this.dir);
    for (const l of loops.loopdevices) {
      const back = l['back-file'] ?? '';
      const file = back.replace(/ \(deleted\)$/, '');
      if (!file.startsWith(dir + '/')) continue;
      const id = unknownId(file, inUse);
      if (id) out.push({ Kind: 'loop', Object: `${l.name} ${file}`, Why: `container ${id.slice(0, 12)} does not exist`, Owner: 'storage' });
      else if (back !== file) out.push({ Kind: 'loop', Object: `${l.name} ${file}`, Why: 'its backing file was deleted', Owner: 'storage' });
    }
    return out;
  }

  /** Delete the scratch image and its record; the backend that mounted it has unmounted it. */
  async remove(id: string): Promise<void> {
    this.check(id);
    // The image through the thread pool: freeing what a container wrote (up to its cap) can take the file system a
    // while, which must not hold the event loop. The record is a small file.
    await rm(this.image(id), { force: true });
    removeFile(this.metaFile(id));
    this.upperBytesSeen.delete(id);
  }

  /** Bytes measured in scratches no backend had mounted, by container, with the image file's state they were read at. */
  private readonly upperBytesSeen = new Map<string, { at: string; bytes: number }>();

  /**
   * `measure` of the upper dir of a scratch no backend has mounted (docker's SizeRw of a stopped container), again only
   * once its image file has changed: each reading mounts it (a loop device, a mount, a walk), and `ps -s` or
   * `system df` would do that for every stopped container at every call. Only what mounts or attaches the file (a
   * start, a copy, a VM's disk) writes it, and each write moves its mtime.
   */
  async unmountedUpperBytes(id: string, measure: (upper: string) => Promise<number>): Promise<number> {
    const at = async () => {
      const s = await stat(this.image(id));
      return `${s.ino}/${s.size}/${s.mtimeMs}/${s.ctimeMs}`;
    };
    const seen = this.upperBytesSeen.get(id);
    if (seen && seen.at === (await at())) return seen.bytes;
    const bytes = await this.withUpper(id, measure);
    this.upperBytesSeen.set(id, { at: await at(), bytes });
    return bytes;
  }

  /**
   * Run `fn` on the upper dir of a scratch no backend has mounted: it is mounted read-only (noload: no journal replay)
   * for the duration, then taken down again.
   */
  async withUpper<T>(id: string, fn: (upper: string) => Promise<T>): Promise<T> {
    this.check(id);
    const file = this.image(id);
    await stat(file).catch(() => {
      throw invalid(`container ${id} has no scratch to commit`);
    });
    const mnt = join(this.runDir, 'scratch', `commit-${id}-${randomBytes(4).toString('hex')}`);
    const dev = await attachLoop(file, true);
    try {
      await mkdir(mnt, { mode: 0o700 });
      await run('mount', ['-t', 'ext4', '-o', 'ro,noload', dev, mnt]);
      try {
        return await fn(join(mnt, 'upper'));
      } finally {
        await unmountAll(mnt);
      }
    } finally {
      await run('losetup', ['-d', dev], { allowFail: true });
      await rmdirQuiet(mnt);
    }
  }
}
