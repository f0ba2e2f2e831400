// busybox:latest built from the host's static busybox (Debian busybox-static). The tar is generated with
// fixed mtimes, owners and order, so the diff ID — and with the fixed `created` the image id — is stable.

import { readFile } from 'node:fs/promises';
import * as tar from 'tar-stream';
import { run } from '../common/exec.js';
import { byCodeUnits } from '../common/order.js';

export const BUSYBOX = '/bin/busybox';
export const BASE_NAME = 'busybox:latest';
export const BASE_CREATED = '2024-01-01T00:00:00Z';
export const BASE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const BASE_CHANGES = ['CMD ["sh"]', `ENV ${BASE_PATH}`];

const MTIME = new Date(BASE_CREATED);

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnogroup:x:65534:\n';

const DIRS: [string, number][] = [
  ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['proc', 0o555], ['root', 0o700],
  ['sbin', 0o755], ['sys', 0o555], ['tmp', 0o1777], ['usr', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755],
  ['var', 0o755], ['var/tmp', 0o1777],
];

/** Applet paths relative to /, e.g. "bin/sh", from `busybox --list-full`. */
export async function appletPaths(): Promise<string[]> {
  const r = await run(BUSYBOX, ['--list-full']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().replace(/^\/+/, ''))
    .filter((l) => l.includes('/') && l !== 'bin/busybox' && !l.includes('..'))
    .sort();
}

/** The rootfs as a tar stream. */
export async function busyboxTar(): Promise<tar.Pack> {
  const bin = await readFile(BUSYBOX);
  const applets = await appletPaths();
  const pack = tar.pack();
  const base = { uid: 0, gid: 0, mtime: MTIME };
  const dirs = new Map(DIRS);
  // Every parent of an applet must be a listed directory entry (deterministic modes).
  for (const a of applets) {
    const parts = a.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) dirs.set(d, 0o755);
    }
  }
  for (const [d, mode] of [...dirs].sort((x, y) => byCodeUnits(x[0], y[0]))) {
    pack.entry({ ...base, name: d, type: 'directory', mode });
  }
  pack.entry({ ...base, name: 'bin/busybox', type: 'file', mode: 0o755 }, bin);
  // Hardlinks, as in docker's busybox: one inode, busybox dispatches on argv[0].
  for (const a of applets) pack.entry({ ...base, name: a, type: 'link', linkname: 'bin/busybox', mode: 0o755 });
  pack.entry({ ...base, name: 'etc/passwd', type: 'file', mode: 0o644 }, PASSWD);
  pack.entry({ ...base, name: 'etc/group', type: 'file', mode: 0o644 }, GROUP);
  pack.finalize();
  return pack;
}
