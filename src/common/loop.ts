// Loop devices and mounts through the host tools. Loop devices are always found by backing file (the kernel's own
// record in /sys/block/loopN/loop/backing_file, as `losetup -j` reads it), never assumed by number, so nothing Silo
// did not attach is ever touched.

import { readFileSync, realpathSync, rmdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { run } from './exec.js';
import { isMounted, readMounts } from './mountinfo.js';

/**
 * Loop devices currently backed by `file`: read from the kernel, so finding none costs no process. /proc/partitions
 * lists only the block devices that have a size, so an unbound loop device (a host may have dozens: snaps, VM images,
 * other tools) costs nothing, where probing each one's sysfs entry cost a failed access() apiece, twice per container
 * (~100 system calls). A device bound to an empty file is not listed either; an image Silo attaches is never empty.
 * The reads are synchronous: each takes microseconds, where an asynchronous read is four thread-pool round trips.
 */
export async function loopsFor(file: string): Promise<string[]> {
  // The kernel records the path it opened, symlinks resolved.
  let want = file;
  try {
    want = join(realpathSync.native(dirname(file)), basename(file)); // one libc call, not a readlink per level
  } catch {
    /* gone: compared as given */
  }
  const found: string[] = [];
  for (const n of boundLoops()) {
    let backing = '';
    try {
      backing = readFileSync(`/sys/block/${n}/loop/backing_file`, 'utf8'); // unbound meanwhile: ENOENT
    } catch {
      continue;
    }
    if (backing.replace(/\n$/, '') === want) found.push(`/dev/${n}`);
  }
  return found.sort((a, b) => Number(a.slice(9)) - Number(b.slice(9)));
}

/** Names (loopN) of the loop devices with a size, from /proc/partitions: `major minor #blocks name` per line. */
export function boundLoops(text = readPartitions()): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const name = line.trim().split(/\s+/)[3];
    if (name && /^loop\d+$/.test(name)) out.push(name);
  }
  return out;
}

function readPartitions(): string {
  try {
    return readFileSync('/proc/partitions', 'utf8');
  } catch {
    return ''; // no procfs: none
  }
}

export async function attachLoop(file: string, readOnly = false): Promise<string> {
  const r = await run('losetup', ['--find', '--show', ...(readOnly ? ['--read-only'] : []), file]);
  return r.stdout.trim();
}

export async function detachLoops(file: string): Promise<void> {
  // -d on a still-busy device (lazily unmounted) sets autoclear: the kernel detaches it when released.
  for (const dev of await loopsFor(file)) await run('losetup', ['-d', dev], { allowFail: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Unmount the mounts at `paths`, in that order (the first may sit on the second), with one `umount` for all; whatever
 * stays mounted then goes through unmountAll's retries. A scratch mounted with `-o loop` frees its loop device as it
 * is unmounted (autoclear).
 */
export async function unmountInOrder(paths: string[]): Promise<void> {
  const mounted = new Set((await readMounts()).map((m) => m.mountPoint));
  const targets = paths.filter((p) => mounted.has(p));
  if (targets.length > 0) await run('umount', targets, { allowFail: true });
  for (const p of paths) await unmountAll(p);
}

/** Unmount everything stacked at `path`. A plain umount first; lazy only if it stays busy. */
export async function unmountAll(path: string): Promise<void> {
  for (let tries = 0; await isMounted(path); tries++) {
    const r = await run('umount', [path], { allowFail: true });
    if (r.code === 0) continue;
    if (tries < 3) await sleep(100 * (tries + 1));
    else await run('umount', ['-l', path]);
  }
}

/** rmdir, any error ignored; synchronously (an empty directory: no thread-pool round trip). */
export async function rmdirQuiet(path: string): Promise<void> {
  try {
    rmdirSync(path);
  } catch {
    /* not there, or not empty: left */
  }
}
