// Leaks: kernel objects and processes that carry a service's names but that none of its objects owns. Each service
// finds its own (it alone knows its names) and removes only those; `silo doctor` asks each and adds the lists up.

import { readFile, rmdir } from 'node:fs/promises';
import { run } from './exec.js';
import { readMounts } from './mountinfo.js';

export interface Finding {
  Kind: 'mount' | 'loop' | 'cgroup' | 'monitor' | 'netns' | 'link' | 'runtime';
  Object: string;
  Why: string;
  /** Who found it and removes it: an isolation mode, 'storage' or 'network'. */
  Owner: string;
}

/** What each service offers the doctor. */
export interface LeakReporter {
  leaks(): Promise<Finding[]>;
  fixLeaks(found: Finding[]): Promise<void>;
}

const ID = /[0-9a-f]{64}/g;

/** The first 64-hex id in `text` that `known` does not have. */
export function unknownId(text: string, known: (id: string) => boolean): string | undefined {
  return (text.match(ID) ?? []).find((id) => !known(id));
}

/** Mounts under `dirs` whose path names an id that `known` does not have. */
export async function strayMounts(dirs: string[], known: (id: string) => boolean, owner: string): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const m of await readMounts()) {
    if (!dirs.some((d) => m.mountPoint.startsWith(d + '/'))) continue;
    const id = unknownId(m.mountPoint, known);
    if (id) out.push({ Kind: 'mount', Object: m.mountPoint, Why: `container ${id.slice(0, 12)} does not exist`, Owner: owner });
  }
  return out;
}

/** Remove findings of the kernel kinds; processes first, then mounts, devices, cgroups, namespaces and links. */
export async function removeFindings(found: Finding[]): Promise<void> {
  const order: Finding['Kind'][] = ['monitor', 'mount', 'loop', 'cgroup', 'netns', 'link'];
  for (const kind of order) {
    for (const f of found.filter((x) => x.Kind === kind)) {
      if (kind === 'monitor') {
        try {
          process.kill(Number(f.Object.split(' ').pop()), 'SIGKILL');
        } catch {
          // gone already
        }
      } else if (kind === 'mount') await run('umount', ['-l', f.Object], { allowFail: true });
      else if (kind === 'loop') await run('losetup', ['-d', f.Object.split(' ')[0]], { allowFail: true });
      else if (kind === 'cgroup') {
        for (const pid of (await readFile(`${f.Object}/cgroup.procs`, 'utf8').catch(() => '')).split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
        await rmdir(f.Object).catch(() => {});
      } else if (kind === 'netns') await run('ip', ['netns', 'del', f.Object], { allowFail: true });
      else await run('ip', ['link', 'del', f.Object], { allowFail: true });
    }
  }
}
