// /proc/self/mountinfo is the truth about what is mounted: after a daemon restart the mounts Silo made may
// still be there, so idempotent mount/unmount decisions are taken from it, never from our own memory.

import { readFileSync } from 'node:fs';

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

/** The kernel's escaping of a path in mountinfo (the inverse of unescapeOctal). */
const escapeOctal = (s: string): string => s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

// Read synchronously: the file is a few KiB the kernel makes on read, and an asynchronous readFile of a /proc file
// (size 0) is several thread-pool round trips; it is read a few times per container.
const mountinfoText = (): string => readFileSync('/proc/self/mountinfo', 'utf8');

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(mountinfoText());
}

/** Whether mountinfo `text` has a mount at `path`; only the lines that name it are parsed (a host may have hundreds). */
export function mountedIn(text: string, path: string): boolean {
  const needle = ` ${escapeOctal(path)} `;
  for (const line of text.split('\n')) if (line.includes(needle) && parseMountinfo(line)[0]?.mountPoint === path) return true;
  return false;
}

export async function isMounted(path: string): Promise<boolean> {
  return mountedIn(mountinfoText(), path);
}
