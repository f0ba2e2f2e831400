// docker's copy-up of a volume: a mapped directory marked PopulateFromImage that is empty when its container is
// created gets what the image holds at its container path (files, owners, modes, and the directory's own owner and
// mode), so `-v data:/etc/app` starts with the image's /etc/app as it does under dockerd. The copy goes through the
// backend's copy-out of the container's own root (rootOnly: no mapped directory in the way), so a path is resolved
// inside the container for both isolations and nothing the image holds can lead the copy onto the host.

import { chmod, chown, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { hostTree, putArchive } from './archive.js';
import { isSiloError } from '../common/errors.js';
import type { CopyTarget, IsolationBackend, MappedDirectory } from './backend.js';

/** Where a copy is extracted before its entries move up: a crash during the extraction leaves only this, and the
 *  volume counts as empty again (the next create removes it and copies afresh); one during the moves leaves part. */
export const POPULATE_TEMP = '.silo-populate.tmp';

const GO_DIR = 0x80000000;

/** Fill `m.HostPath` from the image's `m.ContainerPath` if the directory is empty; true if anything was copied. */
export async function populateFromImage(b: IsolationBackend, t: CopyTarget, m: MappedDirectory): Promise<boolean> {
  const dir = m.HostPath;
  const entries = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
    throw e;
  });
  // docker copies into an empty volume only: a volume that has data keeps it, whatever the image holds.
  if (!entries || entries.some((e) => e !== POPULATE_TEMP)) return false;
  const tmp = join(dir, POPULATE_TEMP);
  await rm(tmp, { recursive: true, force: true });
  const own: CopyTarget = { ...t, mounts: [], rootOnly: true };
  // `path/.` resolves a symlink in the image to the directory it leads to; that directory is then copied by its own
  // path, so the tar's top entry is it, with its owner and mode.
  let real: string;
  try {
    const r = await b.statPath(own, `${m.ContainerPath.replace(/\/+$/, '')}/.`);
    if ((r.stat.mode & GO_DIR) === 0 || r.path === '/') return false;
    real = r.path;
  } catch (e) {
    if (isSiloError(e) && e.class === 'NotFound') return false; // nothing there in the image: the volume stays empty
    throw e;
  }
  await mkdir(tmp, { mode: 0o700 });
  try {
    await b.copyOut(own, real, (_stat, tar) => putArchive(hostTree({ rootfs: tmp, mounts: [] }), '/', tar));
    const top = join(tmp, posix.basename(real));
    for (const e of await readdir(top)) await rename(join(top, e), join(dir, e));
    const s = await lstat(top);
    await chown(dir, s.uid, s.gid);
    await chmod(dir, s.mode & 0o7777);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return true;
}
