// A running guest's container root as a Tree for copies (docker cp, a build's COPY, docker export): every call is one
// request to the guest agent (ops FS and FWRITE, agent/fs.c), which resolves each path inside the container's root
// with openat2(RESOLVE_IN_ROOT) and never follows a final component, as the process backend's helper does on the
// host (process/inroot.ts). So the tree code is the same for both backends (archive.ts, storage's extractor), and so
// are docker cp's rules. The container keeps running; every request has a time limit.

import { constants as C, type Stats } from 'node:fs';
import { Readable } from 'node:stream';
import { badState } from '../../common/errors.js';
import type { ReadHandle, Tree } from '../archive.js';
import type { WriteHandle } from '../../storage/extract.js';
import { decodeList, decodeStrings, encodeStrings, Op, type AgentChannel } from './channel.js';

/** A guest that does not answer one call within this is given up on (the copy fails; the VM runs on). */
const CALL_MS = 30_000;
/** Bytes per read or write request (the agent's frames are at most 1 MiB). */
const CHUNK = 256 * 1024;
/** Reads in flight while a file streams out. */
const READ_AHEAD = 4;

const ERRNO: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 5: 'EIO', 7: 'E2BIG', 9: 'EBADF', 11: 'EAGAIN', 13: 'EACCES', 17: 'EEXIST', 18: 'EXDEV',
  20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 24: 'EMFILE', 27: 'EFBIG', 28: 'ENOSPC', 30: 'EROFS', 31: 'EMLINK', 36: 'ENAMETOOLONG',
  39: 'ENOTEMPTY', 40: 'ELOOP', 122: 'EDQUOT',
};

function fsError(e: unknown, what: string, path?: string): Error {
  const m = e instanceof Error ? /^errno=(\d+)$/.exec(e.message) : null;
  if (!m) return e as Error;
  const n = Number(m[1]);
  const code = ERRNO[n] ?? `E${n}`;
  return Object.assign(new Error(`${code}: ${what}${path ? ` '${path}'` : ''} in the utility VM`), { code, errno: -n });
}

const time = (d: Date): [string, number][] => {
  const ms = d.getTime();
  return [['sec', Math.floor(ms / 1000)], ['nsec', (((ms % 1000) + 1000) % 1000) * 1e6]];
};

/** A stat of the guest as node's Stats (the fields and tests copies use; all of them filled). */
class GuestStats implements Stats {
  dev: number; ino: number; mode: number; nlink: number; uid: number; gid: number; rdev: number; size: number;
  blksize: number; blocks: number; atimeMs: number; mtimeMs: number; ctimeMs: number; birthtimeMs: number;
  atime: Date; mtime: Date; ctime: Date; birthtime: Date;
  constructor(st: string) {
    const f = st.split(' ');
    const n = (i: number) => Number(f[i]);
    [this.mode, this.uid, this.gid, this.size, this.ino, this.nlink, this.dev, this.rdev, this.blocks, this.blksize] = [n(0), n(1), n(2), n(3), n(4), n(5), n(6), n(7), n(8), n(9)];
    [this.atimeMs, this.mtimeMs, this.ctimeMs] = [n(10) * 1000, n(11) * 1000, n(12) * 1000];
    this.birthtimeMs = this.ctimeMs;
    [this.atime, this.mtime, this.ctime, this.birthtime] = [new Date(this.atimeMs), new Date(this.mtimeMs), new Date(this.ctimeMs), new Date(this.ctimeMs)];
  }
  private is = (t: number) => (this.mode & C.S_IFMT) === t;
  isFile = () => this.is(C.S_IFREG);
  isDirectory = () => this.is(C.S_IFDIR);
  isBlockDevice = () => this.is(C.S_IFBLK);
  isCharacterDevice = () => this.is(C.S_IFCHR);
  isSymbolicLink = () => this.is(C.S_IFLNK);
  isFIFO = () => this.is(C.S_IFIFO);
  isSocket = () => this.is(C.S_IFSOCK);
}

/** The copies' calls on the container `ctr` of the guest behind `chan`; close() closes what a failed copy left open. */
export class GuestTree {
  private readonly open = new Set<number>();

  constructor(
    private readonly chan: AgentChannel,
    private readonly ctr: number,
    /** The root as its own filesystem holds it, without /proc, /dev, /sys and the bound files (docker export). */
    private readonly own = false,
  ) {}

  private async call(what: string, kv: [string, string | number][], path?: string): Promise<Buffer> {
    const payload = encodeStrings([['do', what], ...(this.own ? [['own', 1] as [string, number]] : []), ...kv]);
    try {
      return await this.chan.request(Op.FS, this.ctr, payload, CALL_MS);
    } catch (e) {
      throw fsError(e, what, path);
    }
  }

  private async handle(what: 'open' | 'create', path: string, mode = 0): Promise<number> {
    const h = Number(decodeStrings(await this.call(what, [['path', path], ['mode', mode.toString(8)]], path)).get('h'));
    this.open.add(h);
    return h;
  }

  private async closeHandle(h: number): Promise<void> {
    if (!this.open.delete(h)) return;
    await this.call('close', [['h', h]]);
  }

  private async lstat(path: string): Promise<Stats | null> {
    try {
      return new GuestStats(decodeStrings(await this.call('lstat', [['path', path]], path)).get('st') ?? '');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw e;
    }
  }

  private reader(h: number): ReadHandle {
    const read = async (): Promise<Buffer> => this.call('read', [['h', h], ['n', CHUNK]]);
    return {
      // As node's: the file is closed when the stream ends or is destroyed.
      createReadStream: () => {
        const close = () => this.closeHandle(h);
        const chunks = async function* () {
          // A few reads ahead: the agent answers them in order, each from where the last ended, so the round trips
          // overlap (an empty answer is the end; the ones after it are empty too).
          const ahead: Promise<Buffer>[] = [];
          try {
            for (;;) {
              while (ahead.length < READ_AHEAD) ahead.push(read());
              const b = await ahead.shift()!;
              if (!b.length) return;
              yield b;
            }
          } finally {
            await Promise.allSettled(ahead);
            await close().catch(() => {});
          }
        };
        return Readable.from(chunks(), { objectMode: false });
      },
      stat: async () => new GuestStats(decodeStrings(await this.call('fstat', [['h', h]])).get('st') ?? ''),
      readFile: async () => {
        const parts: Buffer[] = [];
        for (let b = await read(); b.length; b = await read()) parts.push(b);
        return Buffer.concat(parts);
      },
      close: () => this.closeHandle(h),
    };
  }

  private writer(h: number): WriteHandle {
    const head = (pos: number) => {
      const b = Buffer.alloc(12);
      b.writeUInt32LE(h, 0);
      b.writeUInt32LE(pos % 2 ** 32, 4);
      b.writeUInt32LE(Math.floor(pos / 2 ** 32), 8);
      return b;
    };
    return {
      writev: async (buffers, position) => {
        const all = Buffer.concat(buffers);
        // Chunks go out together; the agent writes them in order at their offsets.
        const parts: Promise<Buffer>[] = [];
        for (let off = 0; off < all.length; off += CHUNK) {
          const req = this.chan.request(Op.FWRITE, this.ctr, Buffer.concat([head(position + off), all.subarray(off, off + CHUNK)]), CALL_MS);
          parts.push(req.catch((e) => Promise.reject(fsError(e, 'write'))));
        }
        await Promise.all(parts);
        return { bytesWritten: all.length };
      },
      chown: async (uid, gid) => void (await this.call('fchown', [['h', h], ['uid', uid], ['gid', gid]])),
      chmod: async (mode) => void (await this.call('fchmod', [['h', h], ['mode', mode.toString(8)]])),
      utimes: async (_a, m) => void (await this.call('futimes', [['h', h], ...time(m)])),
      close: () => this.closeHandle(h),
    };
  }

  tree(): Tree {
    const erofs = (e: NodeJS.ErrnoException, cpath: string): never => {
      throw e.code === 'EROFS' ? badState(`cannot write to ${cpath}: it is on a read-only mount`) : e;
    };
    const p = (cpath: string): [string, string] => ['path', cpath];
    return {
      lstat: (c) => this.lstat(c),
      readlink: async (c) => decodeStrings(await this.call('readlink', [p(c)], c)).get('target') ?? '',
      readdir: async (c) => decodeList(await this.call('readdir', [p(c)], c)).map((s) => s.slice('name='.length)),
      openRead: async (c) => this.reader(await this.handle('open', c)),
      createFile: async (c, mode) => this.writer(await this.handle('create', c, mode).catch((e) => erofs(e, c))),
      mkdir: async (c, mode) => void (await this.call('mkdir', [p(c), ['mode', mode.toString(8)]], c).catch((e) => erofs(e, c))),
      chmodDir: async (c, mode) => void (await this.call('chmoddir', [p(c), ['mode', mode.toString(8)]], c).catch((e) => erofs(e, c))),
      lchown: async (c, uid, gid) => void (await this.call('lchown', [p(c), ['uid', uid], ['gid', gid]], c).catch((e) => erofs(e, c))),
      symlink: async (t, c) => void (await this.call('symlink', [p(c), ['target', t]], c).catch((e) => erofs(e, c))),
      link: async (existing, c) => void (await this.call('link', [p(existing), ['path2', c]], c).catch((e) => erofs(e, c))),
      lutimes: async (c, t) => void (await this.call('lutimes', [p(c), ...time(t)], c)),
      remove: async (c) =>
        void (await this.call('remove', [p(c)], c).catch((e) => ((e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : erofs(e, c)))),
      readOnly: () => false, // a read-only mount answers EROFS, turned into the same refusal
    };
  }

  /** Close the files a failed copy left open (the agent also closes them if the host goes). */
  async close(): Promise<void> {
    for (const h of [...this.open]) await this.closeHandle(h).catch(() => {});
  }
}
