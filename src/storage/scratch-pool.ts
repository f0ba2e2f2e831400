// Scratch images formatted ahead of time, as Windows keeps a template VHDX: a create takes one with a rename instead
// of running mkfs while the user waits, and the pool is refilled in the background. Only the default size is pooled.

import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../common/exec.js';

export const POOLED_BYTES = 10 * 1024 ** 3;

/**
 * A sparse file of `bytes` with an ext4 filesystem on it; costs a few MB of metadata however large. The filesystem
 * holds the overlay's empty upper/ and work/ already (mkfs -d), so a mount makes neither: made in a fresh ext4 they
 * were the costliest system calls of a container's start (an inode allocation each, in an inode table never read yet),
 * on the host for the daemon and, under TCG, in a utility VM's emulated kernel.
 */
export async function formatScratch(file: string, bytes: number): Promise<void> {
  const layout = scratchLayout(dirname(file));
  const fd = openSync(file, 'wx', 0o600); // metadata only (a sparse file): synchronously, no pool round trips
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  // lazy init + noinit_itable at mount: a fresh sparse file reads as zeros already. No resize_inode: a scratch is
  // never grown, and its 1024 reserved descriptor blocks would be 4 MB of zeros written per image (whose writeback
  // the next fsync on the state filesystem, a create's, would wait for).
  await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-O', '^resize_inode', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', '-d', layout, file]);
}

/** The tree mkfs copies into every scratch (an empty upper/ 0755 and work/ 0700 in a root 0755), made once in `dir`. */
function scratchLayout(dir: string): string {
  const layout = join(dir, '.layout');
  if (existsSync(join(layout, 'work'))) return layout;
  for (const [d, mode] of [[layout, 0o755], [join(layout, 'upper'), 0o755], [join(layout, 'work'), 0o700]] as const) {
    mkdirSync(d, { recursive: true });
    chmodSync(d, mode); // not the umask's
  }
  return layout;
}

export class ScratchPool {
  private filling?: Promise<void>;

  constructor(
    private readonly dir: string,
    private readonly depth = 2,
  ) {}

  /** Drop what a killed refill left half-made, then fill in the background. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.dir)) if (f.endsWith('.tmp')) await rm(join(this.dir, f), { force: true });
    this.refill();
  }

  /** Move a ready image of `bytes` to `dest`; false when the size is not pooled or none is ready. */
  async take(bytes: number, dest: string): Promise<boolean> {
    if (bytes !== POOLED_BYTES) return false;
    // Synchronous listing and rename (a directory of two or three names, one rename): each is microseconds, where
    // through the thread pool each is a round trip to a worker thread and back, three per container made.
    const ready = this.ready();
    for (const f of ready) {
      try {
        renameSync(join(this.dir, f), dest);
        this.refill();
        return true;
      } catch {
        // taken by a concurrent create: try the next
      }
    }
    this.refill();
    return false;
  }

  private ready(): string[] {
    try {
      return readdirSync(this.dir).filter((f) => f.endsWith('.img'));
    } catch {
      return [];
    }
  }

  refill(): void {
    if (this.filling) return;
    this.filling = (async () => {
      for (;;) {
        if (this.ready().length >= this.depth) return;
        const name = randomBytes(8).toString('hex');
        const tmp = join(this.dir, `${name}.tmp`);
        try {
          await formatScratch(tmp, POOLED_BYTES);
          renameSync(tmp, join(this.dir, `${name}.img`));
        } catch (e) {
          await rm(tmp, { force: true });
          throw e;
        }
      }
    })()
      .catch(() => {}) // the pool is an optimisation: a failed refill leaves creates on the slow path
      .finally(() => (this.filling = undefined));
  }

  /** Wait for a refill in progress (tests and shutdown). */
  async idle(): Promise<void> {
    await this.filling;
  }
}
