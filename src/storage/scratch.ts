// Per-container roots: a sparse ext4 image (root/scratch/<id>.img) on a loop device is the writable scratch,
// so its size is a hard cap (writes past it get ENOSPC inside the container; the host disk never fills);
// overlayfs unions the read-only layers under it. Every step of mount() is undone if a later one fails.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, sweepTempFiles, writeJsonAtomic } from '../common/atomic.js';
import { conflict, invalid } from '../common/errors.js';
import { run } from '../common/exec.js';
import { hexOf } from './digest.js';
import { attachLoop, detachLoops, loopsFor, rmdirQuiet, unmountAll, unmountInOrder } from './loop.js';
import { isMounted } from './mountinfo.js';
import { formatScratch, ScratchPool } from './scratch-pool.js';

export interface RootMeta {
  imageId: string;
  /** Chain IDs of the image's layers, bottom first; keeps them from being garbage-collected. */
  chainIds: string[];
  scratchBytes: number;
}

export const MIN_SCRATCH = 16 * 1024 * 1024;
/** The kernel copies mount options into one page. */
const MAX_MOUNT_DATA = 4000;
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
    for (const d of [this.dir, this.runDir, join(this.runDir, 'scratch'), join(this.runDir, 'rootfs')]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700); // merged roots hold the layers' setuid files: host users must not reach them
    }
    await sweepTempFiles(this.dir);
    await this.pool.init();
  }

  check(id: string): void {
    if (!ID.test(id)) throw invalid(`invalid container id "${id}"`);
  }

  image = (id: string) => join(this.dir, `${id}.img`);
  metaFile = (id: string) => join(this.dir, `${id}.json`);
  scratchMount = (id: string) => join(this.runDir, 'scratch', id);
  rootfs = (id: string) => join(this.runDir, 'rootfs', id);
  upper = (id: string) => join(this.scratchMount(id), 'upper');

  meta(id: string): Promise<RootMeta | undefined> {
    return readJson<RootMeta>(this.metaFile(id));
  }

  async ids(): Promise<string[]> {
    return (await readdir(this.dir)).filter((n) => n.endsWith('.img')).map((n) => n.slice(0, -4));
  }

  async allMeta(): Promise<RootMeta[]> {
    const out: RootMeta[] = [];
    for (const id of await this.ids()) {
      const m = await this.meta(id);
      if (m) out.push(m);
    }
    return out;
  }

  /** Mount (or find mounted) the container's root. `chainIds` bottom first. Caller serialises per id. */
  async mount(id: string, meta: RootMeta): Promise<{ rootfs: string; scratchBytes: number }> {
    this.check(id);
    const rootfs = this.rootfs(id);
    const old = await this.meta(id);
    if (old && old.imageId !== meta.imageId) {
      throw conflict(`container ${id} already has a scratch made for image ${old.imageId}`);
    }
    if (await isMounted(rootfs)) return { rootfs, scratchBytes: old?.scratchBytes ?? meta.scratchBytes };
    if (meta.chainIds.length === 0) throw invalid('image has no layers');
    const lower = [...meta.chainIds].reverse().map((c) => `${hexOf(c)}/diff`).join(':');
    const undo: (() => Promise<unknown>)[] = [];
    try {
      const file = this.image(id);
      if (!old) {
        if (meta.scratchBytes < MIN_SCRATCH) throw invalid(`scratch size must be at least ${MIN_SCRATCH} bytes`);
        await rm(file, { force: true }); // a scratch without its meta record was never finished
        undo.push(() => rm(file, { force: true }));
        if (!(await this.pool.take(meta.scratchBytes, file))) await formatScratch(file, meta.scratchBytes);
        await writeJsonAtomic(this.metaFile(id), meta);
        undo.push(() => rm(this.metaFile(id), { force: true }));
      }
      const mnt = this.scratchMount(id);
      if (!(await isMounted(mnt))) {
        // A scratch made just now cannot have a loop device yet; one made earlier may (a daemon restart).
        const dev = old ? (await loopsFor(file))[0] : undefined;
        await mkdir(mnt, { recursive: true, mode: 0o700 });
        undo.push(() => rmdirQuiet(mnt));
        // Else mount attaches one itself (one process, not losetup then mount), with autoclear: it goes at the unmount.
        if (!dev) undo.push(() => detachLoops(file));
        await run('mount', ['-t', 'ext4', '-o', dev ? 'noinit_itable' : 'loop,noinit_itable', dev ?? file, mnt]);
        undo.push(() => unmountAll(mnt));
      }
      await mkdir(join(mnt, 'upper'), { recursive: true, mode: 0o755 });
      await mkdir(join(mnt, 'work'), { recursive: true, mode: 0o700 });
      // Relative lowerdirs (resolved against cwd = layers/) stretch the one-page option limit to ~55 layers.
      // redirect_dir/metacopy off: commit must find whole files and real directories in upper/.
      const opts = `lowerdir=${lower},upperdir=${join(mnt, 'upper')},workdir=${join(mnt, 'work')},index=off,redirect_dir=off,metacopy=off`;
      if (opts.length > MAX_MOUNT_DATA) {
        throw invalid(`image has too many layers (${meta.chainIds.length}) for one overlay mount`);
      }
      await mkdir(rootfs, { recursive: true, mode: 0o755 });
      undo.push(() => rmdirQuiet(rootfs));
      await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, rootfs], { cwd: this.layersDir });
      return { rootfs, scratchBytes: old?.scratchBytes ?? meta.scratchBytes };
    } catch (e) {
      for (const u of undo.reverse()) await u().catch(() => {});
      throw e;
    }
  }

  /** The scratch image made (not mounted) for a root that is assembled elsewhere. Caller serialises per id. */
  async prepare(id: string, meta: RootMeta): Promise<{ scratchImage: string; scratchBytes: number }> {
    this.check(id);
    const old = await this.meta(id);
    if (old && old.imageId !== meta.imageId) throw conflict(`container ${id} already has a scratch made for image ${old.imageId}`);
    if (await isMounted(this.scratchMount(id))) throw conflict(`the scratch of container ${id} is mounted on the host`);
    const file = this.image(id);
    if (!old) {
      if (meta.scratchBytes < MIN_SCRATCH) throw invalid(`scratch size must be at least ${MIN_SCRATCH} bytes`);
      if (meta.chainIds.length === 0) throw invalid('image has no layers');
      await rm(file, { force: true }); // a scratch without its meta record was never finished
      try {
        if (!(await this.pool.take(meta.scratchBytes, file))) await formatScratch(file, meta.scratchBytes);
        await writeJsonAtomic(this.metaFile(id), meta);
      } catch (e) {
        await rm(file, { force: true }).catch(() => {});
        throw e;
      }
    }
    return { scratchImage: file, scratchBytes: old?.scratchBytes ?? meta.scratchBytes };
  }

  /** Overlay off, scratch off, loop detached, mount points gone; the scratch image stays. */
  async unmount(id: string): Promise<void> {
    this.check(id);
    // The overlay sits on the scratch: one umount takes both, in that order.
    await unmountInOrder([this.rootfs(id), this.scratchMount(id)]);
    await detachLoops(this.image(id));
    await rmdirQuiet(this.rootfs(id));
    await rmdirQuiet(this.scratchMount(id));
  }

  async remove(id: string): Promise<void> {
    await this.unmount(id);
    await rm(this.image(id), { force: true });
    await rm(this.metaFile(id), { force: true });
  }

  /**
   * Run `fn` on the scratch's upper dir. When the root is not mounted, the scratch alone is mounted
   * read-only (noload: no journal replay) for the duration, then taken down again.
   */
  async withUpper<T>(id: string, fn: (upper: string) => Promise<T>): Promise<T> {
    this.check(id);
    if (await isMounted(this.scratchMount(id))) return fn(this.upper(id));
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
