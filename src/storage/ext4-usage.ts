// How full a scratch is, as its filesystem counts it: blocks and inodes in use, from the kernel (statfs) while the
// scratch is mounted, else from the ext4 superblock of its image, which the kernel wrote back at the unmount. Both
// count the same thing: blocks in use beyond the filesystem's fixed overhead (what `df` shows), and inodes in use.
// Nothing in the container's files is read.

import { open, statfs } from 'node:fs/promises';

export interface FsUsage {
  usedBytes: number;
  inodesUsed: number;
}

const SUPERBLOCK_OFFSET = 1024;
const EXT4_MAGIC = 0xef53;
const INCOMPAT_64BIT = 0x80;

/** The usage an ext4 superblock (the 1024 bytes at offset 1024 of the filesystem) records; undefined if it is not one. */
export function superblockUsage(sb: Buffer): FsUsage | undefined {
  if (sb.length < 0x250 || sb.readUInt16LE(0x38) !== EXT4_MAGIC) return undefined;
  const wide = (sb.readUInt32LE(0x60) & INCOMPAT_64BIT) !== 0;
  const u64 = (lo: number, hi: number) => sb.readUInt32LE(lo) + (wide ? sb.readUInt32LE(hi) * 2 ** 32 : 0);
  const blockSize = 1024 * 2 ** sb.readUInt32LE(0x18);
  const blocks = u64(0x04, 0x150);
  const free = u64(0x0c, 0x158);
  // mke2fs records the overhead (journal, group metadata, inode tables); statfs leaves it out of the total as well.
  const overhead = sb.readUInt32LE(0x248);
  const inodes = sb.readUInt32LE(0x00);
  const freeInodes = sb.readUInt32LE(0x10);
  return { usedBytes: Math.max(0, blocks - overhead - free) * blockSize, inodesUsed: Math.max(0, inodes - freeInodes) };
}

export async function imageUsage(file: string): Promise<FsUsage | undefined> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, SUPERBLOCK_OFFSET);
    return superblockUsage(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** The usage of the mounted filesystem that holds `path`. */
export async function mountedUsage(path: string): Promise<FsUsage> {
  const s = await statfs(path);
  return { usedBytes: Math.max(0, s.blocks - s.bfree) * s.bsize, inodesUsed: Math.max(0, s.files - s.ffree) };
}
