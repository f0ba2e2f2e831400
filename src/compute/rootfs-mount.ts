// Mounting a root storage described on the host: the scratch image on a loop device (ext4, its size the cap) and
// overlayfs of the read-only layers under it. Used by the `process` backend, whose containers run on the host.
//   <dir>/scratch/<id>   the scratch's filesystem (upper/ and work/ of the overlay, runtime/ for /etc's bound files)
//   <dir>/rootfs/<id>    the merged root handed to the OCI runtime
//   <dir>/init           the topmost lower layer of every root: what dockerd's init layer adds (/etc/mtab)
// Every step is undone if a later one fails; what is mounted is read from /proc/self/mountinfo, never remembered, so
// a daemon restart finds its mounts again.

import { mkdirSync } from 'node:fs';
import { chmod, mkdir, readdir, symlink } from 'node:fs/promises';
import { readSmallText } from '../common/atomic.js';
import { dirname, join } from 'node:path';
import { invalid } from '../common/errors.js';
import { run } from '../common/exec.js';
import { detachLoops, loopsFor, rmdirQuiet, unmountAll, unmountInOrder } from '../common/loop.js';
import { isMounted, readMounts } from '../common/mountinfo.js';
import type { RootDescription } from '../storage/types.js';

/** The kernel copies mount options into one page. */
const MAX_MOUNT_DATA = 4000;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class RootMounts {
  constructor(private readonly dir: string) {}

  async init(): Promise<void> {
    for (const d of [this.dir, join(this.dir, 'scratch'), join(this.dir, 'rootfs')]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700); // merged roots hold the layers' setuid files: host users must not reach them
    }
    // Above the image's layers, below the container's changes, as dockerd's init layer: /etc/mtab -> /proc/mounts,
    // which tools that read the mount table there (and images without one, as busybox) expect. Not a change of the
    // container's (not in its diff or a commit), the same for every container.
    await mkdir(join(this.initLayer, 'etc'), { recursive: true, mode: 0o755 });
    await symlink('/proc/mounts', join(this.initLayer, 'etc', 'mtab')).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }

  private get initLayer(): string {
    return join(this.dir, 'init');
  }

  rootfs = (id: string) => join(this.dir, 'rootfs', check(id));
  private scratch = (id: string) => join(this.dir, 'scratch', check(id));

  /** The files the runtime binds over /etc (hosts, resolv.conf, hostname) while the root is mounted: in the scratch's
   *  filesystem beside upper/, so what a container writes to them counts against its cap and is not a change of its. */
  runtimeFiles = (id: string) => join(this.scratch(id), 'runtime');

  /** The overlay's upper dir while the root is mounted: the scratch's changes, for a commit. */
  async upper(id: string): Promise<string | undefined> {
    return (await isMounted(this.scratch(id))) ? join(this.scratch(id), 'upper') : undefined;
  }

  async mounted(id: string): Promise<boolean> {
    return isMounted(this.rootfs(id));
  }

  /** Ids with a mount point here (mounted or left by an interrupted mount). */
  async ids(): Promise<string[]> {
    const out = new Set<string>();
    for (const d of ['scratch', 'rootfs']) for (const n of await readdir(join(this.dir, d)).catch(() => [] as string[])) if (ID.test(n)) out.add(n);
    return [...out];
  }

  /** Mount (or find mounted) the root; returns the merged directory. */
  async mount(id: string, root: RootDescription): Promise<string> {
    const rootfs = this.rootfs(id);
    if (await isMounted(rootfs)) return rootfs;
    if (root.layers.length === 0) throw invalid('image has no layers');
    if (root.scratch.format !== 'ext4' && root.scratch.format !== 'tmpfs') throw invalid(`unsupported scratch format ${JSON.stringify(root.scratch.format)}`);
    // Mount points are made synchronously (metadata of microseconds; a thread-pool round trip each otherwise).
    // overlayfs' lowerdir lists the topmost first. Layers that share a parent are named relative to it (mount runs
    // there): ~55 layers then fit in one page.
    const dirs = root.layers.map((l) => l.path).reverse();
    const parent = dirname(dirname(dirs[0]));
    const shared = dirs.every((l) => dirname(dirname(l)) === parent);
    const lower = [this.initLayer, ...dirs.map((l) => (shared ? l.slice(parent.length + 1) : l))].join(':');
    const undo: (() => Promise<unknown>)[] = [];
    try {
      const file = root.scratch.path;
      const mnt = this.scratch(id);
      const scratchMounted = await isMounted(mnt);
      if (!scratchMounted && root.scratch.format === 'tmpfs') {
        mkdirSync(mnt, { recursive: true, mode: 0o700 });
        undo.push(() => rmdirQuiet(mnt));
        await run('mount', ['-t', 'tmpfs', '-o', `size=${root.scratch.sizeBytes},mode=0700`, 'tmpfs', mnt]);
        undo.push(() => unmountAll(mnt));
      } else if (!scratchMounted) {
        // A device still attached to the image (a daemon restart between mount steps) is used again.
        const dev = (await loopsFor(file))[0];
        mkdirSync(mnt, { recursive: true, mode: 0o700 });
        undo.push(() => rmdirQuiet(mnt));
        // Else mount attaches one itself (one process, not losetup then mount), with autoclear: it goes at the unmount.
        if (!dev) undo.push(() => detachLoops(file));
        await run('mount', ['-t', 'ext4', '-o', dev ? 'noinit_itable' : 'loop,noinit_itable', dev ?? file, mnt]);
        undo.push(() => unmountAll(mnt));
      }
      mkdirSync(join(mnt, 'upper'), { recursive: true, mode: 0o755 });
      mkdirSync(join(mnt, 'work'), { recursive: true, mode: 0o700 });
      const opts = [`lowerdir=${lower}`, `upperdir=${join(mnt, 'upper')}`, `workdir=${join(mnt, 'work')}`, ...root.overlayOptions].join(',');
      if (opts.length > MAX_MOUNT_DATA) throw invalid(`image has too many layers (${root.layers.length}) for one overlay mount`);
      mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      undo.push(() => rmdirQuiet(rootfs));
      await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, rootfs], shared ? { cwd: parent } : {});
      return rootfs;
    } catch (e) {
      for (const u of undo.reverse()) await u().catch(() => {});
      throw e;
    }
  }

  /** Overlay off, scratch off, loop detached (autoclear), mount points gone; the scratch image keeps the changes. */
  async unmount(id: string): Promise<void> {
    // The image behind the scratch's loop device, so a device left attached (not autoclear) is detached too.
    const src = (await readMounts()).find((m) => m.mountPoint === this.scratch(id))?.source ?? '';
    const image = /^\/dev\/loop\d+$/.test(src) ? readSmallText(`/sys/block/${src.slice(5)}/loop/backing_file`).trim() : '';
    // The overlay sits on the scratch: one umount takes both, in that order.
    await unmountInOrder([this.rootfs(id), this.scratch(id)]);
    if (image) await detachLoops(image);
    await rmdirQuiet(this.rootfs(id));
    await rmdirQuiet(this.scratch(id));
  }
}

function check(id: string): string {
  if (!ID.test(id)) throw invalid(`invalid container id "${id}"`);
  return id;
}
