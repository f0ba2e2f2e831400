// Files in and out of a directory tree seen as a container sees it: the process backend's copies (docker cp, a
// build's COPY/ADD) and the builder's own context. Every filesystem call goes through a Tree:
//   - hostTree: a directory of the host plus the container's mapped directories, walked by host path. Only for trees
//     nothing else changes meanwhile: a stopped container's root, a build context.
//   - a running container's root is an InRootTree (process/inroot.ts): each parent directory is opened inside the
//     container's own root with openat2(RESOLVE_IN_ROOT), so no process inside can lead a copy out by swapping a
//     path component for a symlink (CVE-2018-15664) while the container keeps running, never paused.
// Nothing from the tree is ever executed (CVE-2019-14271); symlinks are resolved in the container's namespace of
// paths, never above "/"; a final component is never followed where a file is made or opened.

import { constants as C, type Stats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, readlink, rm, symlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { extractTar, NO_CAPS, underTree, type ByteSource, type WriteHandle } from '../storage/extract.js';
import { invalid, SiloError } from '../common/errors.js';
import type { CopyInOptions, CopyTarget, MappedDirectory, PathStat } from './backend.js';

const notFound = (m: string) => new SiloError('NotFound', 'SILO_NOT_FOUND', m);

export interface RootView {
  rootfs: string;
  mounts: MappedDirectory[];
}

/** What a copy does with a file it opened to read: node's FileHandle has these, and so has a file in a VM's guest. */
export interface ReadHandle {
  createReadStream(): Readable;
  stat(): Promise<Stats>;
  readFile(): Promise<Buffer>;
  close(): Promise<void>;
}

/** The filesystem calls a copy makes, by clean absolute container path; none follows the final component. */
export interface Tree {
  lstat(cpath: string): Promise<Stats | null>;
  readlink(cpath: string): Promise<string>;
  readdir(cpath: string): Promise<string[]>;
  openRead(cpath: string): Promise<ReadHandle>;
  createFile(cpath: string, mode: number): Promise<WriteHandle>;
  mkdir(cpath: string, mode: number): Promise<void>;
  chmodDir(cpath: string, mode: number): Promise<void>;
  lchown(cpath: string, uid: number, gid: number): Promise<void>;
  symlink(target: string, cpath: string): Promise<void>;
  link(existing: string, cpath: string): Promise<void>;
  lutimes(cpath: string, t: Date): Promise<void>;
  remove(cpath: string): Promise<void>;
  /** True when the path is on a mapped directory mounted read-only (as far as the tree can tell). */
  readOnly(cpath: string): boolean;
}

const GO_DIR = 2 ** 31;
const GO_SYMLINK = 2 ** 27;
const GO_PIPE = 2 ** 25;
const GO_SOCKET = 2 ** 24;
const GO_DEVICE = 2 ** 26;
const GO_CHARDEV = 2 ** 21;
const MAX_LINKS = 40;

/** Host path of a clean absolute container path: the longest mapped directory wins, else the root. */
function hostOf(v: RootView, cpath: string): { host: string; readOnly: boolean } {
  let best: MappedDirectory | undefined;
  for (const m of v.mounts) {
    const mp = posix.normalize(m.ContainerPath).replace(/\/$/, '');
    if ((cpath === mp || cpath.startsWith(mp + '/')) && (!best || mp.length > best.ContainerPath.length)) best = { ...m, ContainerPath: mp };
  }
  if (!best) return { host: v.rootfs + cpath, readOnly: false };
  const base = best.Subpath ? `${best.HostPath}/${best.Subpath}` : best.HostPath;
  return { host: base + cpath.slice(best.ContainerPath.length), readOnly: !!best.ReadOnly };
}

export const lstatOrNull = (p: string) => lstat(p).catch((e) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? null : Promise.reject(e)));

/** A host directory tree (with the container's mapped directories) walked by host path: for trees nobody changes meanwhile. */
export function hostTree(v: RootView): Tree {
  const h = (c: string) => hostOf(v, c).host;
  return {
    lstat: (c) => lstatOrNull(h(c)),
    readlink: (c) => readlink(h(c)),
    readdir: (c) => readdir(h(c)),
    openRead: (c) => open(h(c), C.O_RDONLY | C.O_NOFOLLOW),
    createFile: (c, mode) => open(h(c), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode),
    mkdir: async (c, mode) => void (await mkdir(h(c), { mode })),
    chmodDir: (c, mode) => chmod(h(c), mode),
    lchown: (c, uid, gid) => lchown(h(c), uid, gid),
    symlink: (t, c) => symlink(t, h(c)),
    link: (e, c) => link(h(e), h(c)),
    lutimes: (c, t) => lutimes(h(c), t, t),
    remove: (c) => rm(h(c), { recursive: true, force: true }),
    readOnly: (c) => hostOf(v, c).readOnly,
  };
}

const treeOf = (v: RootView | Tree): Tree => ('lstat' in v ? v : hostTree(v));

/**
 * Resolve `p` as the container would, following symlinks in every component (and in the last one if
 * `followLast`), never above "/". Returns the container path reached; missing trailing components are allowed.
 */
export async function resolvePath(tv: RootView | Tree, p: string, followLast: boolean): Promise<string> {
  const t = treeOf(tv);
  const todo = posix.normalize('/' + p).split('/').filter(Boolean);
  let cur = '/';
  let links = 0;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      cur = posix.dirname(cur);
      continue;
    }
    const next = posix.join(cur, c);
    const st = await t.lstat(next);
    if (st?.isSymbolicLink() && (todo.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw invalid(`too many levels of symbolic links resolving ${p}`);
      const target = await t.readlink(next);
      todo.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) cur = '/';
      continue;
    }
    cur = next;
  }
  return cur;
}

function goMode(st: import('node:fs').Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m += GO_DIR;
  else if (st.isSymbolicLink()) m += GO_SYMLINK;
  else if (st.isFIFO()) m += GO_PIPE;
  else if (st.isSocket()) m += GO_SOCKET;
  else if (st.isCharacterDevice()) m += GO_DEVICE + GO_CHARDEV;
  else if (st.isBlockDevice()) m += GO_DEVICE;
  return m;
}

/** docker's container path stat: the last component is not followed (a link reports its target). */
export async function statPath(tv: RootView | Tree, p: string, containerName: string): Promise<{ stat: PathStat; cpath: string }> {
  const t = treeOf(tv);
  const cpath = await resolvePath(t, p, false);
  const st = await t.lstat(cpath);
  if (!st) throw notFound(`Could not find the file ${p} in container ${containerName}`);
  const linkTarget = st.isSymbolicLink() ? await resolvePath(t, cpath, true) : '';
  return { cpath, stat: { name: posix.basename(cpath) || '/', size: st.size, mode: goMode(st), mtime: st.mtime.toISOString(), linkTarget } };
}

/** The top entry's name in a copy of `p` (resolved to `cpath`), as docker's daemon names it: "." for a path ending in
 *  "/." (a directory's contents: `docker cp ctr:/dir/. dest` fills dest), else the resolved path's base name. */
export function archiveName(p: string, cpath: string): string {
  return /(^|\/)\.$/.test(p) ? '.' : posix.basename(cpath) || '.';
}

/** A tar of `cpath` (already resolved) named by its base name; directories recursively, links not followed. */
export function tarOf(tv: RootView | Tree, cpath: string, rename?: string): Readable {
  const t = treeOf(tv);
  const pack = tar.pack();
  const add = (h: Parameters<tar.Pack["entry"]>[0], body?: Readable) =>
    new Promise<void>((res, rej) => {
      if (!body) return void pack.entry(h, Buffer.alloc(0), (e) => (e ? rej(e) : res()));
      const w = pack.entry(h, (e) => (e ? rej(e) : res()));
      body.on('error', rej);
      body.pipe(w);
    });
  // As docker's archiver: a file with more links than one is stored once, later names as hard links to the first
  // (busybox's few hundred names of one binary are one copy, not hundreds).
  const seen = new Map<string, string>();
  const walk = async (cp: string, name: string): Promise<void> => {
    const st = await t.lstat(cp);
    if (!st) return; // gone meanwhile
    const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      await add({ ...base, type: 'directory' });
      for (const n of (await t.readdir(cp)).sort()) await walk(posix.join(cp, n), `${name}/${n}`);
    } else if (st.isSymbolicLink()) await add({ ...base, type: 'symlink', linkname: await t.readlink(cp) });
    else if (st.isFile() && st.nlink > 1 && seen.has(`${st.dev}:${st.ino}`)) await add({ ...base, type: 'link', linkname: seen.get(`${st.dev}:${st.ino}`)! });
    else if (st.isFile()) {
      if (st.nlink > 1) seen.set(`${st.dev}:${st.ino}`, name);
      const fh = await t.openRead(cp);
      // The size in the header is what the file had when it was looked at; a file that changed meanwhile (the
      // container runs) is cut or padded to it so the archive stays well-formed.
      await add({ ...base, type: 'file', size: st.size }, exactly(fh.createReadStream(), st.size));
    }
  };
  walk(cpath, rename ?? (posix.basename(cpath) || '.')).then(
    () => pack.finalize(),
    (e) => pack.destroy(e as Error),
  );
  return pack as unknown as Readable;
}

export type PutOptions = CopyInOptions;

/** Extract a tar under the directory `dir` (container path, followed). Entries may not climb out of it. */
export async function putArchive(tv: RootView | Tree, dir: string, input: AsyncIterable<Uint8Array>, o: PutOptions = {}): Promise<void> {
  const v = treeOf(tv);
  const dest = await resolvePath(v, dir, true);
  const dst = await v.lstat(dest);
  if (!dst) throw notFound(`Could not find the file ${dir} in container`);
  if (!dst.isDirectory()) throw invalid(`extraction point is not a directory: ${dir}`);
  // The one safe extractor (storage's), as a copy: under the destination, never through a symlink, read-only
  // mounts refused, devices and FIFOs skipped.
  await extractTar(input as ByteSource, '', NO_CAPS, { layer: false, tree: underTree(v, dest), ...(o.owner ? { owner: o.owner } : {}), ...(o.noOverwriteDirNonDir ? { noOverwriteDirNonDir: true } : {}) });
}

/** `mkdir -p` of a container path, following existing symlinks inside the container's namespace only. */
export async function mkdirAll(tv: RootView | Tree, dir: string, owner?: { uid: number; gid: number }): Promise<string> {
  const v = treeOf(tv);
  const d = await resolvePath(v, dir, true);
  let cp = '/';
  for (const c of d.split('/').filter(Boolean)) {
    cp = posix.join(cp, c);
    const st = await v.lstat(cp);
    if (!st) {
      await v.mkdir(cp, 0o755);
      if (owner) await v.lchown(cp, owner.uid, owner.gid);
    } else if (!st.isDirectory()) throw invalid(`cannot create directory ${dir}: ${cp} is not a directory`);
  }
  return d;
}

/** Read a small file of the container (e.g. /etc/passwd) without following a symlink out of it. */
export async function readSmallFile(tv: RootView | Tree, p: string, max = 1 << 20): Promise<string | undefined> {
  const v = treeOf(tv);
  const cp = await resolvePath(v, p, true);
  const fh = await v.openRead(cp).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > max) return undefined;
    return (await fh.readFile()).toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * The backends' file operations (docker cp, the archive routes, a volume's directory, /etc/passwd): the same over
 * whatever tree a backend reaches a container's files by.
 */
export abstract class TreeFiles {
  /** Run `fn` over the container's tree, mounted for the call where it must be. */
  protected abstract withTree<T>(t: CopyTarget, fn: (tree: Tree) => Promise<T>): Promise<T>;

  statPath(t: CopyTarget, path: string): Promise<{ stat: PathStat; path: string }> {
    return this.withTree(t, async (tree) => {
      const { stat, cpath } = await statPath(tree, path, t.name);
      return { stat, path: cpath };
    });
  }

  copyOut(t: CopyTarget, path: string, sink: (stat: PathStat, tar: Readable) => Promise<void>): Promise<void> {
    return this.withTree(t, async (tree) => {
      const { stat, cpath } = await statPath(tree, path, t.name);
      await sink(stat, tarOf(tree, cpath, archiveName(path, cpath)));
    });
  }

  copyIn(t: CopyTarget, dir: string, input: AsyncIterable<Uint8Array>, o: CopyInOptions): Promise<void> {
    return this.withTree(t, (tree) => putArchive(tree, dir, input, o));
  }

  makeDirectory(t: CopyTarget, path: string, owner?: { uid: number; gid: number }): Promise<string> {
    return this.withTree(t, (tree) => mkdirAll(tree, path, owner));
  }

  readFile(t: CopyTarget, path: string, maxBytes: number): Promise<string | undefined> {
    return this.withTree(t, (tree) => readSmallFile(tree, path, maxBytes));
  }
}

/** `src` cut or zero-padded to exactly `size` bytes. */
async function* exactlyGen(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let left = size;
  for await (const chunk of src) {
    if (left <= 0) break;
    const c = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= c.length;
    yield c;
  }
  while (left > 0) {
    const n = Math.min(left, 65536);
    left -= n;
    yield Buffer.alloc(n);
  }
}

function exactly(src: Readable, size: number): Readable {
  const out = Readable.from(exactlyGen(src, size));
  out.on('close', () => src.destroy());
  return out;
}
