// Layer disks: one read-only ext4 image per image layer, made once from the layer's extracted directory (mkfs.ext4 -d
// keeps owners, modes, xattrs and overlay whiteouts) and attached to every utility VM that uses the layer.
// Made under a temporary name and renamed into place, so a crash leaves no half-made disk that looks finished.

import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../common/atomic.js';
import { run } from '../../common/exec.js';
import { KeyedLock } from '../../common/lock.js';

const hex = (chainId: string) => chainId.replace(/^sha256:/, '');

/** Bytes and inodes a directory tree needs on ext4 (4 KiB blocks), with room for metadata. */
async function measure(dir: string): Promise<{ bytes: number; inodes: number }> {
  let bytes = 0;
  let inodes = 0;
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      inodes++;
      const p = join(d, e.name);
      const s = await lstat(p);
      bytes += Math.ceil(s.size / 4096) * 4096 + 4096;
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return { bytes, inodes };
}

export class LayerDisks {
  private readonly lock = new KeyedLock();

  constructor(private readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.dir)) {
      if (f.includes('.tmp')) await rm(join(this.dir, f), { force: true });
    }
  }

  /** The disk of a layer, made now if it is not there yet. */
  ensure(chainId: string, layerDir: string): Promise<string> {
    const file = join(this.dir, `${hex(chainId)}.img`);
    return this.lock.run(chainId, async () => {
      if (await stat(file).then(() => true, () => false)) return file;
      const { bytes, inodes } = await measure(layerDir);
      const size = Math.ceil((bytes * 1.1 + inodes * 256 + 8 * 1024 * 1024) / (1024 * 1024));
      const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
      try {
        await run('mkfs.ext4', ['-q', '-F', '-d', layerDir, '-m', '0', '-N', String(inodes + 64), '-O', '^has_journal,^resize_inode', '-E', 'root_owner=0:0,nodiscard', '-L', 'silo-layer', tmp, `${size}M`]);
        await writeJsonAtomic(`${file}.json`, { chainId, source: layerDir });
        await rename(tmp, file);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      return file;
    });
  }

  /** Drop disks whose layer is gone from the storage service. */
  async prune(): Promise<void> {
    for (const f of await readdir(this.dir).catch(() => [] as string[])) {
      if (!f.endsWith('.img.json')) continue;
      const meta = JSON.parse(await readFile(join(this.dir, f), 'utf8').catch(() => '{}')) as { source?: string };
      if (meta.source && !(await stat(meta.source).then(() => true, () => false))) {
        await rm(join(this.dir, f.slice(0, -5)), { force: true });
        await rm(join(this.dir, f), { force: true });
      }
    }
  }
}
