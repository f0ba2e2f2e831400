// Files in and out of a directory tree seen as a container sees it (a mounted root with its mapped directories, or a
// build context): the process backend's copies (docker cp, a build's COPY/ADD) and the builder's own context.
// Safety (CVE-2018-15664, CVE-2019-14271): nothing from the tree is ever executed; paths are resolved in the
// container's namespace of paths, component by component with lstat, so a symlink (absolute or with ..) can never
// lead out of the root or a mapped directory; the compute service pauses a running container for the copy so no
// process inside can swap a component between the check and the use; files are opened O_NOFOLLOW.

import { constants as C } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, readlink, rm, symlink, lutimes, link, chmod } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { badState, invalid, SiloError } from '../common/errors.js';

const notFound = (m: string) => new SiloError('NotFound', 'SILO_NOT_FOUND', m);
import type { CopyInOptions, MappedDirectory, PathStat } from './backend.js';

export interface RootView {
  rootfs: string;
  mounts: MappedDirectory[];
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
  return { host: best.HostPath + cpath.slice(best.ContainerPath.length), readOnly: !!best.ReadOnly };
}

const lstatOrNull = (p: string) => lstat(p).catch((e) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? null : Promise.reject(e)));

/**
 * Resolve `p` as the container would, following symlinks in every component (and in the last one if
 * `followLast`), never above "/". Returns the container path reached; missing trailing components are allowed.
 */
export async function resolvePath(v: RootView, p: string, followLast: boolean): Promise<string> {
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
    const st = await lstatOrNull(hostOf(v, next).host);
    if (st?.isSymbolicLink() && (todo.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw invalid(`too many levels of symbolic links resolving ${p}`);
      const target = await readlink(hostOf(v, next).host);
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
export async function statPath(v: RootView, p: string, containerName: string): Promise<{ stat: PathStat; cpath: string }> {
  const cpath = await resolvePath(v, p, false);
  const st = await lstatOrNull(hostOf(v, cpath).host);
  if (!st) throw notFound(`Could not find the file ${p} in container ${containerName}`);
  const linkTarget = st.isSymbolicLink() ? await resolvePath(v, cpath, true) : '';
  return { cpath, stat: { name: posix.basename(cpath) || '/', size: st.size, mode: goMode(st), mtime: st.mtime.toISOString(), linkTarget } };
}

/** A tar of `cpath` (already resolved) named by its base name; directories recursively, links not followed. */
export function tarOf(v: RootView, cpath: string, rename?: string): Readable {
  const pack = tar.pack();
  const add = (h: Parameters<tar.Pack["entry"]>[0], body?: Readable) =>
    new Promise<void>((res, rej) => {
      if (!body) return void pack.entry(h, Buffer.alloc(0), (e) => (e ? rej(e) : res()));
      const w = pack.entry(h, (e) => (e ? rej(e) : res()));
      body.on('error', rej);
      body.pipe(w);
    });
  const walk = async (cp: string, name: string): Promise<void> => {
    const host = hostOf(v, cp).host;
    const st = await lstat(host);
    const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      await add({ ...base, type: 'directory' });
      for (const n of (await readdir(host)).sort()) await walk(posix.join(cp, n), `${name}/${n}`);
    } else if (st.isSymbolicLink()) await add({ ...base, type: 'symlink', linkname: await readlink(host) });
    else if (st.isFile()) {
      const fh = await open(host, C.O_RDONLY | C.O_NOFOLLOW);
      await add({ ...base, type: 'file', size: st.size }, fh.createReadStream());
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
export async function putArchive(v: RootView, dir: string, input: AsyncIterable<Uint8Array>, o: PutOptions = {}): Promise<void> {
  const dest = await resolvePath(v, dir, true);
  const dh = hostOf(v, dest);
  const dst = await lstatOrNull(dh.host);
  if (!dst) throw notFound(`Could not find the file ${dir} in container`);
  if (!dst.isDirectory()) throw invalid(`extraction point is not a directory: ${dir}`);
  const ex = tar.extract();
  Readable.from(input).on('error', (e) => ex.destroy(e)).pipe(ex);
  for await (const e of ex as unknown as AsyncIterable<Readable & { header: tar.Header }>) {
    const h = e.header;
    const comps: string[] = h.name.split('/').filter((c) => c && c !== '.');
    if (comps.includes('..') || h.name.includes('\0')) throw invalid(`refused archive entry "${h.name}": path escapes the destination`);
    if (!comps.length) {
      e.resume();
      continue;
    }
    // Parents inside the destination: walked with lstat, created if missing, never through a symlink.
    let cp = dest;
    for (const c of comps.slice(0, -1)) {
      cp = posix.join(cp, c);
      const t = hostOf(v, cp);
      const st = await lstatOrNull(t.host);
      if (!st) await mkdir(t.host, { mode: 0o755 });
      else if (!st.isDirectory()) throw invalid(`refused archive entry "${h.name}": ${cp} is not a directory`);
    }
    cp = posix.join(cp, comps[comps.length - 1]);
    const t = hostOf(v, cp);
    if (t.readOnly) throw badState(`cannot write to ${cp}: it is on a read-only mount`);
    const old = await lstatOrNull(t.host);
    const isDir = h.type === 'directory';
    if (old && o.noOverwriteDirNonDir && old.isDirectory() !== isDir) {
      throw invalid(`cannot overwrite ${old.isDirectory() ? 'directory' : 'non-directory'} "${cp}" with ${isDir ? 'directory' : 'non-directory'}`);
    }
    const uid = o.owner?.uid ?? h.uid ?? 0;
    const gid = o.owner?.gid ?? h.gid ?? 0;
    const mode = (h.mode ?? 0o644) & 0o7777;
    if (isDir) {
      if (old && !old.isDirectory()) await rm(t.host, { force: true });
      if (!old || !old.isDirectory()) await mkdir(t.host, { mode });
      else await chmod(t.host, mode);
      await lchown(t.host, uid, gid);
      e.resume();
      continue;
    }
    if (old) await rm(t.host, { recursive: true, force: true });
    if (h.type === 'file' || h.type === 'contiguous-file') {
      const fh = await open(t.host, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
      try {
        for await (const chunk of e) await fh.write(chunk as Buffer);
        await fh.chown(uid, gid);
        await fh.chmod(mode);
      } finally {
        await fh.close();
      }
    } else if (h.type === 'symlink') {
      await symlink(h.linkname ?? '', t.host);
      await lchown(t.host, uid, gid);
      e.resume();
    } else if (h.type === 'link') {
      // A hardlink target is another entry of this archive, under the destination, reached without symlinks.
      const tc: string[] = (h.linkname ?? '').split('/').filter((c) => c && c !== '.');
      if (!tc.length || tc.includes('..')) throw invalid(`refused hardlink "${h.name}" -> "${h.linkname}"`);
      let tp = dest;
      for (const c of tc) {
        tp = posix.join(tp, c);
        const st = await lstatOrNull(hostOf(v, tp).host);
        if (!st || st.isSymbolicLink()) throw invalid(`refused hardlink "${h.name}" -> "${h.linkname}": target missing or a symlink`);
      }
      await link(hostOf(v, tp).host, t.host);
      e.resume();
    } else {
      e.resume(); // devices, FIFOs: never created from an archive
      continue;
    }
    if (h.mtime && h.type !== 'link') await lutimes(t.host, h.mtime, h.mtime).catch(() => {});
  }
}

/** `mkdir -p` of a container path, following existing symlinks inside the container's namespace only. */
export async function mkdirAll(v: RootView, dir: string, owner?: { uid: number; gid: number }): Promise<string> {
  const d = await resolvePath(v, dir, true);
  let cp = '/';
  for (const c of d.split('/').filter(Boolean)) {
    cp = posix.join(cp, c);
    const h = hostOf(v, cp).host;
    const st = await lstatOrNull(h);
    if (!st) {
      await mkdir(h, { mode: 0o755 });
      if (owner) await lchown(h, owner.uid, owner.gid);
    } else if (!st.isDirectory()) throw invalid(`cannot create directory ${dir}: ${cp} is not a directory`);
  }
  return d;
}

/** Read a small file of the container (e.g. /etc/passwd) without following a symlink out of it. */
export async function readSmallFile(v: RootView, p: string, max = 1 << 20): Promise<string | undefined> {
  const cp = await resolvePath(v, p, true);
  const fh = await open(hostOf(v, cp).host, C.O_RDONLY | C.O_NOFOLLOW).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > max) return undefined;
    return (await fh.readFile()).toString('utf8');
  } finally {
    await fh.close();
  }
}
