// Removing a directory an engine used: first lazily unmount whatever is still mounted below it (overlay roots, the
// storage driver's private bind mount of its own home), deepest first, or rm would fail on busy mounts.

import { readFile, rm } from 'node:fs/promises';
import { tryExec } from './proc.js';

export async function unmountBelow(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await tryExec('umount', ['-l', m]);
}

export async function removeDir(dir: string): Promise<void> {
  await unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
}
