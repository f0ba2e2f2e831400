// /proc/self/mountinfo is the truth about what is mounted: after a daemon restart the mounts Silo made may
// still be there, so idempotent mount/unmount decisions are taken from it, never from our own memory.

import { readFile } from 'node:fs/promises';

export interface MountEntry {
  mountPoint: string;
  root: string;
  fsType: string;
  source: string;
}

/** The kernel escapes space, tab, newline and backslash in paths as \ooo octal. */
export const unescapeOctal = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (post === undefined) continue;
    const f = pre.split(' ');
    const g = post.split(' ');
    out.push({ root: unescapeOctal(f[3]), mountPoint: unescapeOctal(f[4]), fsType: g[0], source: unescapeOctal(g[1] ?? '') });
  }
  return out;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

export async function isMounted(path: string): Promise<boolean> {
  return (await readMounts()).some((m) => m.mountPoint === path);
}
