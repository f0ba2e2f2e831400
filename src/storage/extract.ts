// Safe extraction of a tar into a directory: a layer tar into a fresh one, or (`layer: false`) an archive copied
// into a container's filesystem (docker cp, the archive API), the one extractor for both. Security rules (CVE-2014-6407, CVE-2014-9356,
// CVE-2017-14992, CVE-2021-32760, CVE-2026-17106):
//  - every entry path is normalised and must stay inside the layer (paths.ts);
//  - parents are walked component by component with lstat; a symlink or non-directory on the way is refused,
//    so an earlier "x -> /etc" can never redirect a later "x/passwd";
//  - files are opened O_CREAT|O_EXCL|O_NOFOLLOW after removing whatever was at the name;
//  - hardlink targets must exist inside the layer, reached without symlinks;
//  - device nodes and FIFOs are refused in layers and skipped in copies; sizes, entry counts and gzip ratios are
//    capped (input.ts).
// A layer is extracted into an ingest directory the caller deletes on any error; a copy writes into the destination
// as far as it got (as docker cp does).

import { constants as C, type Stats } from 'node:fs';
import { lstat, mkdir, open, rm, symlink, link, lchown, lutimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import * as tar from 'tar-stream';
import { badState, diskFull, exhausted, invalid, internal, isSiloError, oneLine } from '../common/errors.js';
import { run } from '../common/exec.js';
import { entryComponents } from './paths.js';
import { classifyName, OPAQUE_XATTR } from './whiteout.js';
import { MeteredInput, type Caps } from './input.js';

export interface ExtractResult {
  diffId: string;
  size: number;
  entries: number;
}

type Header = tar.Header;
/** Bytes of a tar or tar.gz: a Node stream, a tar-stream pack, or any async iterable. */
export type ByteSource = AsyncIterable<Uint8Array | string>;
/** An archive member as tar-stream yields it (its typings omit the iterator). */
type Entry = AsyncIterable<Uint8Array> & { header: Header };

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

async function lstatOrNull(p: string) {
  try {
    return await lstat(p);
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}

export interface ExtractOptions {
  /** A layer (the default): whiteout entries become overlay whiteouts, device nodes and FIFOs are refused, the root
   *  entry sets the root's metadata. A copy (false): `.wh.` names are plain files, devices and FIFOs are skipped, the
   *  root entry is ignored (the destination keeps its own owner and mode). */
  layer?: boolean;
  /** Owner of every entry instead of the archive's (docker cp --archive off: the container's user). */
  owner?: { uid: number; gid: number };
  /** Refuse to replace a directory with a non-directory or the reverse (the archive API's noOverwriteDirNonDir). */
  noOverwriteDirNonDir?: boolean;
  /** false: an uncompressed input is not hashed, its diff ID comes back '' (the caller hashes the same bytes). */
  hashPlain?: boolean;
  /**
   * The filesystem to extract into, instead of the host directory `dest`: a container's root with directories mapped
   * into it, or one walked inside the container's own root (compute's Tree has these calls). Copies only.
   */
  tree?: ExtractTree;
}

/** What extraction does with a file it made: node's FileHandle has these, and so has a file in a VM's guest. */
export interface WriteHandle {
  writev(buffers: Uint8Array[], position: number): Promise<{ bytesWritten: number }>;
  chown(uid: number, gid: number): Promise<void>;
  chmod(mode: number): Promise<void>;
  utimes(atime: Date, mtime: Date): Promise<void>;
  close(): Promise<void>;
}

/**
 * The calls extraction makes, by path under the destination ("/" is the destination, "/a/b" below it); none follows
 * a final component that is a symlink.
 */
export interface ExtractTree {
  lstat(p: string): Promise<Stats | null>;
  /** Create a new file (O_CREAT|O_EXCL|O_NOFOLLOW). */
  createFile(p: string, mode: number): Promise<WriteHandle>;
  mkdir(p: string, mode: number): Promise<void>;
  chmodDir(p: string, mode: number): Promise<void>;
  lchown(p: string, uid: number, gid: number): Promise<void>;
  symlink(target: string, p: string): Promise<void>;
  /** A hard link at `p` to `existing`, which is not followed if it is a symlink. */
  link(existing: string, p: string): Promise<void>;
  lutimes(p: string, t: Date): Promise<void>;
  /** Remove whatever is at `p`, a directory with its contents. */
  remove(p: string): Promise<void>;
  /** True when `p` is on a read-only mount. */
  readOnly(p: string): boolean;
}

/** The part of `t` under its directory `dir`, as a tree of its own (compute's container trees, under a copy's target). */
export function underTree(t: ExtractTree, dir: string): ExtractTree {
  const at = (p: string) => posix.join(dir, p);
  return {
    lstat: (p) => t.lstat(at(p)),
    createFile: (p, mode) => t.createFile(at(p), mode),
    mkdir: (p, mode) => t.mkdir(at(p), mode),
    chmodDir: (p, mode) => t.chmodDir(at(p), mode),
    lchown: (p, uid, gid) => t.lchown(at(p), uid, gid),
    symlink: (target, p) => t.symlink(target, at(p)),
    link: (existing, p) => t.link(at(existing), at(p)),
    lutimes: (p, d) => t.lutimes(at(p), d),
    remove: (p) => t.remove(at(p)),
    readOnly: (p) => t.readOnly(at(p)),
  };
}

/** A host directory as an ExtractTree. */
export function hostTree(root: string): ExtractTree {
  const at = (p: string) => join(root, p);
  return {
    lstat: (p) => lstatOrNull(at(p)),
    createFile: (p, mode) => open(at(p), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode),
    mkdir: (p, mode) => mkdir(at(p), { mode }),
    async chmodDir(p, mode) {
      // Through a descriptor opened O_NOFOLLOW: chmod(2) would follow a symlink put in the directory's place.
      const fh = await open(at(p), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      try {
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
    },
    lchown: (p, uid, gid) => lchown(at(p), uid, gid),
    symlink: (target, p) => symlink(target, at(p)),
    link: (existing, p) => link(at(existing), at(p)), // linkat without AT_SYMLINK_FOLLOW: a symlink is linked, not followed
    lutimes: (p, t) => lutimes(at(p), t, t),
    remove: (p) => rm(at(p), { recursive: true, force: true }),
    readOnly: () => false,
  };
}

class Extractor {
  entries = 0;
  private dirTimes: { comps: string[]; mtime: Date }[] = [];
  private readonly layer: boolean;
  private readonly t: ExtractTree;

  constructor(
    private readonly root: string,
    private readonly caps: Caps,
    private readonly o: ExtractOptions = {},
  ) {
    this.layer = o.layer ?? true;
    if (this.layer && o.tree) throw internal('a layer is extracted into a host directory, not a tree');
    this.t = o.tree ?? hostTree(root);
  }

  /** The tree path of `comps`. */
  private at(comps: string[]): string {
    return '/' + comps.join('/');
  }

  /** Walk `comps` under the root with lstat; create missing directories if `create`. Refuse symlinks. */
  private async walkDirs(comps: string[], name: string, create: boolean): Promise<string> {
    let p = this.at([]);
    for (const [i, c] of comps.entries()) {
      p = this.at(comps.slice(0, i + 1));
      const st = await this.t.lstat(p);
      if (st === null) {
        if (!create) throw invalid(`refused entry "${name}": hardlink target is not in the layer ("${c}" does not exist)`);
        await this.t.mkdir(p, 0o755);
      } else if (st.isSymbolicLink()) {
        throw invalid(`refused entry "${name}": its path passes through the symlink "${comps.slice(0, i + 1).join('/')}"`);
      } else if (!st.isDirectory()) {
        throw invalid(`refused entry "${name}": "${c}" on its path is not a directory`);
      }
    }
    return p;
  }

  /** Clear the final name so a new entry replaces the old one (tar semantics) without following links. */
  private async clear(p: string, keepDir: boolean, name?: string): Promise<boolean> {
    const st = await this.t.lstat(p);
    if (st === null) return false;
    if (name !== undefined && this.o.noOverwriteDirNonDir && st.isDirectory() !== keepDir) {
      throw invalid(`cannot overwrite ${st.isDirectory() ? 'directory' : 'non-directory'} "${name}" with ${keepDir ? 'directory' : 'non-directory'}`);
    }
    if (keepDir && st.isDirectory()) return true;
    await this.t.remove(p);
    return false;
  }

  private uid = (h: Header) => this.o.owner?.uid ?? h.uid ?? 0;
  private gid = (h: Header) => this.o.owner?.gid ?? h.gid ?? 0;

  private async applyMeta(fh: WriteHandle, h: Header): Promise<void> {
    // chown first: it clears setuid/setgid, chmod afterwards puts them back.
    await fh.chown(this.uid(h), this.gid(h));
    await fh.chmod((h.mode ?? 0o644) & 0o7777);
  }

  async entry(e: Entry): Promise<void> {
    const h = e.header;
    const name = h.name;
    if (++this.entries > this.caps.maxEntries) throw exhausted(`layer refused: more than ${this.caps.maxEntries} entries`);
    const comps = entryComponents(name);
    const type: string = h.type ?? 'file';
    if (type === 'pax-global-header' || type === 'pax-header') return drain(e);
    if (comps.length === 0) {
      if (type !== 'directory') throw invalid(`refused entry "${name}": the layer root must be a directory`);
      if (this.layer) await this.dir(this.at([]), h, comps);
      return drain(e);
    }
    if (!this.layer && ['character-device', 'block-device', 'fifo'].includes(type)) return drain(e); // never made by a copy
    const base = comps[comps.length - 1];
    const parent = await this.walkDirs(comps.slice(0, -1), name, true);
    const target = this.at(comps);
    if (this.t.readOnly(target)) throw badState(`cannot write to ${target}: it is on a read-only mount`);
    switch (type) {
      case 'directory':
        if (!(await this.clear(target, true, name))) await this.t.mkdir(target, 0o700);
        await this.dir(target, h, comps);
        return drain(e);
      case 'file':
      case 'contiguous-file': {
        const wh = this.layer ? classifyName(base) : { kind: 'none' as const };
        if (wh.kind !== 'none') {
          await drain(e);
          // Layers only, so on the host: an overlay opaque dir is an xattr, a whiteout a 0:0 device.
          if (wh.kind === 'opaque') await run('setfattr', ['-h', '-n', OPAQUE_XATTR, '-v', 'y', join(this.root, parent)]);
          if (wh.kind === 'whiteout') {
            const victim = posix.join(parent, wh.target);
            await this.clear(victim, false);
            await run('mknod', ['-m', '0000', join(this.root, victim), 'c', '0', '0']);
          }
          return;
        }
        await this.clear(target, false, name);
        const fh = await this.t.createFile(target, 0o600);
        try {
          const w = new FileWriter(fh);
          try {
            for await (const chunk of e) await w.write(chunk);
          } catch (err) {
            await w.settle();
            throw err;
          }
          await w.end();
          await this.applyMeta(fh, h);
          if (h.mtime) await fh.utimes(h.mtime, h.mtime);
        } finally {
          await fh.close();
        }
        return;
      }
      case 'symlink': {
        if (!h.linkname) throw invalid(`refused entry "${name}": symlink without a target`);
        if (h.linkname.includes('\0')) throw invalid(`refused entry "${name}": NUL in symlink target`);
        await this.clear(target, false, name);
        // The target is stored verbatim and never followed while extracting.
        await this.t.symlink(h.linkname, target);
        await this.t.lchown(target, this.uid(h), this.gid(h));
        if (h.mtime) await this.t.lutimes(target, h.mtime);
        return drain(e);
      }
      case 'link': {
        const lcomps = entryComponents(h.linkname ?? '', `hardlink "${name}" with target`);
        if (lcomps.length === 0) throw invalid(`refused entry "${name}": hardlink to the layer root`);
        await this.walkDirs(lcomps.slice(0, -1), name, false);
        const src = this.at(lcomps);
        const st = await this.t.lstat(src);
        if (st === null) throw invalid(`refused entry "${name}": hardlink target "${h.linkname}" is not in the layer`);
        if (st.isDirectory()) throw invalid(`refused entry "${name}": hardlink to a directory`);
        if (src === target) return drain(e);
        await this.clear(target, false, name);
        await this.t.link(src, target);
        return drain(e);
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        throw invalid(`refused entry "${name}": ${type} nodes are not allowed in layers`);
      default:
        throw invalid(`refused entry "${name}": unsupported entry type ${type}`);
    }
  }

  private async dir(p: string, h: Header, comps: string[]): Promise<void> {
    // chown first: it clears setuid/setgid, chmod afterwards puts them back.
    await this.t.lchown(p, this.uid(h), this.gid(h));
    await this.t.chmodDir(p, (h.mode ?? 0o644) & 0o7777);
    // Directory mtimes are set last: creating children would bump them again.
    if (h.mtime) this.dirTimes.push({ comps, mtime: h.mtime });
  }

  async finish(): Promise<void> {
    this.dirTimes.sort((a, b) => b.comps.length - a.comps.length);
    for (const d of this.dirTimes) {
      // A later entry may have replaced a parent with a symlink: re-walk with lstat, never set times through one.
      const p = await this.walkDirs(d.comps, d.comps.join('/'), false).catch(() => undefined);
      if (p !== undefined) await this.t.lutimes(p, d.mtime);
    }
  }
}


/** Bytes gathered before a write goes out: one system call (and thread-pool round trip) per batch, not per chunk. */
const WRITE_BATCH = 256 * 1024;
/** Bytes queued behind the write in flight before write() waits. */
const WRITE_AHEAD = 4 * 1024 * 1024;

/**
 * Writes a file's chunks in order with one writev per batch, the next batch gathering while the previous is in the
 * thread pool: the parser and hash go on during the write instead of waiting for each chunk's system call.
 */
export class FileWriter {
  private queue: Uint8Array[] = [];
  private queued = 0;
  private pos = 0;
  private flying: Promise<void> | null = null;
  private failed: { e: unknown } | null = null;

  constructor(private readonly fh: WriteHandle) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.failed) throw this.failed.e;
    if (!chunk.length) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued < WRITE_BATCH) return;
    if (!this.flying) this.kick();
    else if (this.queued >= WRITE_AHEAD) await this.flying; // back-pressure: the batch in flight must land first
  }

  /** Write what is queued and wait for every byte to land; throws the first write error. */
  async end(): Promise<void> {
    await this.settle();
    if (this.queue.length && !this.failed) {
      this.kick();
      await this.settle();
    }
    if (this.failed) throw this.failed.e;
  }

  /** Wait until nothing is in flight (before the file is closed), errors or not. */
  async settle(): Promise<void> {
    while (this.flying) await this.flying;
  }

  private kick(): void {
    const bufs = this.queue;
    this.queue = [];
    this.queued = 0;
    this.flying = this.writeAll(bufs).then(
      () => {
        this.flying = null;
        if (this.queued >= WRITE_BATCH) this.kick();
      },
      (e) => {
        this.failed ??= { e };
        this.queue = [];
        this.queued = 0;
        this.flying = null;
      },
    );
  }

  private async writeAll(bufs: Uint8Array[]): Promise<void> {
    let left = bufs.reduce((n, b) => n + b.length, 0);
    let done = 0;
    while (left > 0) {
      const { bytesWritten } = await this.fh.writev(done ? trim(bufs, done) : bufs, this.pos);
      if (bytesWritten <= 0) throw internal('short write to a layer file');
      this.pos += bytesWritten;
      left -= bytesWritten;
      done += bytesWritten;
    }
  }
}

/** The buffers after the first `skip` bytes (a partial writev goes on where it stopped). */
function trim(bufs: Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

async function drain(e: Entry): Promise<void> {
  for await (const _ of e) {
    /* discard */
  }
}

/**
 * Write `src` into the tar parser `ex` with back-pressure and end it; on the source's error, destroy the parser and
 * resolve with that error (the caller decides whether it or the parser's own error is the one to report).
 */
export async function feedTar(src: AsyncIterable<Uint8Array>, ex: ReturnType<typeof tar.extract>): Promise<unknown> {
  const drained = () =>
    new Promise<void>((res) => {
      if (ex.destroyed) return res();
      const done = () => {
        ex.off('drain', done);
        ex.off('close', done);
        res();
      };
      ex.on('drain', done);
      ex.on('close', done);
    });
  try {
    for await (const chunk of src) {
      if (ex.destroyed) break;
      if (!ex.write(chunk)) await drained();
    }
    if (!ex.destroyed) ex.end(undefined);
    return undefined;
  } catch (err) {
    ex.destroy(err as Error);
    return err;
  }
}

/** Extract `input` (tar or tar.gz) into the existing empty directory `dest`. Throws on any refusal. */
export function extractLayer(input: ByteSource, dest: string, caps: Caps, hashPlain = true): Promise<ExtractResult> {
  return extractTar(input, dest, caps, { layer: true, hashPlain });
}

/** No caps: a copy into a container is bounded by the container's scratch, not by a layer's limits. */
export const NO_CAPS: Caps = { maxLayerBytes: Infinity, maxEntries: Infinity, maxRatio: Infinity, ratioAfterBytes: Infinity };

/**
 * Extract `input` (tar, tar.gz, tar.zst) into the existing directory `dest`, which is walked as a jail: nothing is
 * written outside it, and no symlink inside it is followed. Throws on any refusal (see ExtractOptions).
 */
export async function extractTar(input: ByteSource, dest: string, caps: Caps, o: ExtractOptions): Promise<ExtractResult> {
  const meter = new MeteredInput(caps, o.hashPlain ?? true);
  const ex = tar.extract();
  let feedErr: unknown;
  const feeding = feedTar(meter.chunks(input), ex).then((e) => {
    feedErr = e;
  });
  const x = new Extractor(dest, caps, o);
  let current = '';
  try {
    for await (const entry of ex as AsyncIterable<unknown> as AsyncIterable<Entry>) {
      current = entry.header.name;
      await x.entry(entry);
    }
    await feeding;
    if (feedErr) throw feedErr;
    await x.finish();
  } catch (err) {
    ex.destroy(new Error('extraction aborted'));
    await feeding;
    const e = feedErr ?? err;
    if (isSiloError(e)) throw e;
    // Host-side failures (ENOSPC, EIO...) are ours; anything else is a malformed archive. Name the entry either way.
    const errno = (e as NodeJS.ErrnoException).code;
    const what = o.layer === false ? 'archive' : 'layer';
    const at = current.length > 120 ? `${current.slice(0, 120)}…` : current;
    if (errno === 'ENOSPC' || errno === 'EDQUOT') throw diskFull(`${what} import at entry "${at}": no space left on the storage device`, e);
    // A name the kernel cannot hold came from the archive: the client's error, told without the host path.
    if (errno === 'ENAMETOOLONG') throw invalid(`${what} refused at entry "${at}": name too long`);
    if (typeof (e as NodeJS.ErrnoException).syscall === 'string') throw internal(`${what} import at entry "${at}": ${oneLine(e)}`, e);
    throw invalid(`${what} refused at entry "${at}": ${oneLine(e)}`);
  }
  return { diffId: meter.diffId, size: meter.size, entries: x.entries };
}

