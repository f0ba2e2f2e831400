// docker diff: what a container changed in its image's files, read from its scratch's overlay upper dir. An entry
// of the upper dir is a deletion (an overlay whiteout), a modification (the path exists in a lower layer) or an
// addition; the mount points the runtime made for the container (its /etc/hostname, mapped directories) are not the
// container's changes, as docker keeps them in a layer of their own.

import { lstat, readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { isOverlayWhiteout } from './whiteout.js';

/** Kind as docker numbers it: 0 modified, 1 added, 2 deleted. */
export interface RootChange {
  Path: string;
  Kind: 0 | 1 | 2;
}

/** Whether `rel` is present in the merged lower layers (listed bottom first). */
async function inLower(layers: string[], rel: string): Promise<boolean> {
  for (let i = layers.length - 1; i >= 0; i--) {
    const st = await lstat(join(layers[i]!, rel)).catch(() => undefined);
    if (st) return !isOverlayWhiteout(st);
  }
  return false;
}

export async function rootChanges(upper: string, layers: string[], mountPoints: string[]): Promise<RootChange[]> {
  const out: (RootChange & { dir: boolean })[] = [];
  const visit = async (rel: string): Promise<void> => {
    const names = await readdir(join(upper, rel)).catch(() => [] as string[]);
    for (const n of names) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const st = await lstat(join(upper, r));
      const path = '/' + r;
      if (isOverlayWhiteout(st)) {
        out.push({ Path: path, Kind: 2, dir: false });
        continue;
      }
      const kind = (await inLower(layers, r)) ? 0 : 1;
      if (!(kind === 1 && mountPoints.includes(path))) out.push({ Path: path, Kind: kind, dir: st.isDirectory() });
      if (st.isDirectory()) await visit(r);
    }
  };
  await visit('');
  // A directory copied up only to hold a mount point is no change of the container's; one holding changes is.
  const kept = out.filter((c) => !(c.dir && c.Kind === 0) || out.some((o) => o.Path.startsWith(c.Path + '/')));
  return kept.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0)).map(({ Path, Kind }) => ({ Path, Kind }));
}

export const normalMountPoint = (p: string): string => posix.normalize('/' + p).replace(/\/+$/, '') || '/';

/** Bytes of the files in `upper`: what removing the container gives back (docker's SizeRw). Hard links count once. */
export async function upperBytes(upper: string): Promise<number> {
  let total = 0;
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      const st = await lstat(join(dir, n)).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await visit(join(dir, n));
      else if (st.isFile() || st.isSymbolicLink()) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
        total += st.size;
      }
    }
  };
  await visit(upper);
  return total;
}
