// Loop devices and mounts through the host tools. Loop devices are always found by backing file
// (`losetup -j`), never assumed by number, so nothing Silo did not attach is ever touched.

import { rmdir } from 'node:fs/promises';
import { run } from '../common/exec.js';
import { isMounted } from './mountinfo.js';

/** Loop devices currently backed by `file`. */
export async function loopsFor(file: string): Promise<string[]> {
  const r = await run('losetup', ['-j', file], { allowFail: true });
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => /^(\/dev\/loop\d+):/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);
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

/** Unmount everything stacked at `path`. A plain umount first; lazy only if it stays busy. */
export async function unmountAll(path: string): Promise<void> {
  for (let tries = 0; await isMounted(path); tries++) {
    const r = await run('umount', [path], { allowFail: true });
    if (r.code === 0) continue;
    if (tries < 3) await sleep(100 * (tries + 1));
    else await run('umount', ['-l', path]);
  }
}

export async function rmdirQuiet(path: string): Promise<void> {
  await rmdir(path).catch(() => {});
}
