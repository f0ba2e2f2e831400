// Cgroup dirs the engines made under the bench's tag (Silo's parent `<tag>`, and `<tag>-docker`, `<tag>-podman`,
// `<tag>-runc` for the peers) are removed deepest first; rmdir only succeeds on an empty cgroup, so a cgroup that
// still has a process in it is reported rather than broken.

import { readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';

function removeTree(dir: string, left: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(join(dir, e.name), left);
  try {
    rmdirSync(dir);
  } catch (e) {
    left.push(`${dir}: ${(e as NodeJS.ErrnoException).code}`);
  }
}

/** Hierarchies: v1 controllers plus the unified (v2) mount; a plain v2 host has the cgroup dirs at the root. */
function hierarchies(): string[] {
  const out = [ROOT];
  for (const e of readdirSync(ROOT, { withFileTypes: true })) if (e.isDirectory() && !e.name.startsWith('.')) out.push(join(ROOT, e.name));
  return out;
}

export async function removeCgroups(tag: string): Promise<string[]> {
  const left: string[] = [];
  for (const h of hierarchies()) {
    let names: string[];
    try {
      names = readdirSync(h);
    } catch {
      continue;
    }
    for (const n of names) {
      const p = join(h, n);
      if ((n === tag || n.startsWith(`${tag}-`)) && statSync(p).isDirectory()) removeTree(p, left);
    }
  }
  return left;
}
