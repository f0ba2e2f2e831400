// Checks of a container's root filesystem before runc sees it, for hostile images (../shared/reference/anchors.md).
// runc 1.1.5 (Debian 12) creates /dev's symlinks and nodes at paths joined onto the rootfs without resolving them
// inside it, so an image whose /dev is a symlink gets them written wherever the link points on the host
// (CVE-2026-41579 class); /proc and /sys as links are refused too, so every kernel mount point is a real directory.
// And a working directory is resolved the way the container will see it: a symlink in the image must not lead into
// /proc/<pid>/fd, where a leaked fd gives a cwd on the host (CVE-2024-21626, fixed only in runc 1.1.12).

import { lstatSync, readlinkSync } from 'node:fs';

// lstat and readlink synchronously: a handful of metadata reads per start, each a thread-pool round trip otherwise.
import { join } from 'node:path';
import { invalid } from '../../common/errors.js';
import { checkCwd } from '../resolve.js';

const KERNEL_MOUNTS = ['dev', 'proc', 'sys'];

/** The symlinks runc makes in the container's /dev (a tmpfs: the image's /dev is hidden under it). */
const DEV_LINKS: Record<string, string> = {
  fd: '/proc/self/fd', stdin: '/proc/self/fd/0', stdout: '/proc/self/fd/1', stderr: '/proc/self/fd/2', ptmx: 'pts/ptmx', core: '/proc/kcore',
};

export async function checkRootfs(rootfs: string): Promise<void> {
  for (const d of KERNEL_MOUNTS) {
    const p = join(rootfs, d);
    const st = lstatSync(p, { throwIfNoEntry: false }); // missing: runc makes it
    if (st?.isSymbolicLink()) throw invalid(`refusing the image's root filesystem: /${d} is a symlink (to ${readlinkSync(p)}), not a directory`);
    if (st && !st.isDirectory()) throw invalid(`refusing the image's root filesystem: /${d} is not a directory`);
  }
}

/** `path` as the container will resolve it: the image's symlinks followed inside `rootfs` (never onto the host), runc's
 *  /dev links, and nothing looked up under /dev, /proc or /sys (kernel filesystems there, not the image's files).
 *  Missing components stay as written: runc creates a missing working directory. */
export async function resolveInRoot(rootfs: string, path: string): Promise<string> {
  const todo = path.split('/').filter(Boolean);
  let cur: string[] = [];
  let links = 0;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      cur.pop();
      continue;
    }
    const next = [...cur, c];
    let target: string | undefined;
    if (next.length === 2 && next[0] === 'dev') target = DEV_LINKS[c];
    else if (!KERNEL_MOUNTS.includes(next[0])) {
      const host = join(rootfs, ...next);
      let st;
      try {
        st = lstatSync(host, { throwIfNoEntry: false });
      } catch {
        st = undefined; // ENOTDIR and the like: a missing component, as written
      }
      if (st?.isSymbolicLink()) target = readlinkSync(host);
    }
    if (target === undefined) {
      cur = next;
      continue;
    }
    if (++links > 40) throw invalid(`working directory ${path}: too many levels of symbolic links`);
    todo.unshift(...target.split('/').filter(Boolean));
    if (target.startsWith('/')) cur = [];
  }
  return '/' + cur.join('/');
}

/** checkCwd on the path as written and on where it leads inside the container. */
export async function checkCwdInRoot(rootfs: string, cwd: string): Promise<void> {
  const resolved = await resolveInRoot(rootfs, checkCwd(cwd));
  try {
    checkCwd(resolved);
  } catch {
    throw invalid(`working directory not allowed: ${cwd} (it leads to ${resolved})`);
  }
}
