// `silo cp` and `silo export`: files between a container and the host, with docker cp's rules for where a copy lands
// (decided here, on the client, as docker's CLI decides them; the daemon only reads and writes tars inside the
// container's root). A copy out is extracted with the same extractor the daemon uses for layers and copies in, rooted
// at the destination directory: nothing in a container's archive can lead a write outside it.

import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { dirname, basename, isAbsolute, join, resolve } from 'node:path';
import * as tar from 'tar-stream';
import { hostTree, putArchive, tarOf } from '../../compute/archive.js';
import type { PathStat } from '../../compute/backend.js';
import { PATH_STAT_HEADER } from '../../api/native/routes-archive.js';
import { stream, withQuery, enc } from '../client.js';
import { CliError, DaemonError } from '../errors.js';

/** Go's os.ModeDir and os.ModeSymlink bits, as PathStat.mode carries them. */
const GO_DIR = 2 ** 31;
const GO_SYMLINK = 2 ** 27;

interface Side {
  container?: string;
  path: string;
}

/** docker's split: an absolute path, or one with no colon or starting with ".", is the host's; else `container:path`. */
export function splitCpArg(arg: string): Side {
  if (isAbsolute(arg)) return { path: arg };
  const i = arg.indexOf(':');
  if (i < 0 || arg.slice(0, i).startsWith('.')) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

/** The last element as docker's SplitPathDirEntry sees it: "." for a path ending in "/.", else the base name. */
const lastElement = (p: string) => (/(^|\/)\.$/.test(p) ? '.' : basename(p));
const endsWithSeparator = (p: string) => p.endsWith('/');

/**
 * The tar's entries renamed so that its top entry (the first: the copied file or directory, "." for a directory's
 * contents) is `newBase`, everything under it following, hard link targets too: how a copy to a path that does not
 * exist yet lands under that path's name.
 */
export function rebase(input: Readable, newBase: string): Readable {
  let oldBase: string | undefined;
  const swap = (n: string) => {
    const name = n.replace(/\/+$/, '');
    if (name === oldBase) return newBase;
    if (oldBase === '.') return name.startsWith('./') ? `${newBase}/${name.slice(2)}` : n;
    return name.startsWith(`${oldBase}/`) ? newBase + name.slice(oldBase!.length) : n;
  };
  const extract = tar.extract();
  const pack = tar.pack();
  extract.on('entry', (h, body, next) => {
    oldBase ??= h.name.replace(/\/+$/, '');
    const header = { ...h, name: swap(h.name), ...(h.type === 'link' && h.linkname ? { linkname: swap(h.linkname) } : {}) };
    body.pipe(pack.entry(header, next));
  });
  extract.on('finish', () => pack.finalize());
  extract.on('error', (e) => pack.destroy(e));
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  return pack as unknown as Readable;
}

const statOf = (header: string | string[] | undefined): PathStat => {
  if (typeof header !== 'string') throw new CliError('the daemon sent no stat of the copied path');
  return JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as PathStat;
};

/** The container path's stat, or undefined when it does not exist. */
async function containerStat(ctr: string, path: string): Promise<PathStat | undefined> {
  try {
    const res = await stream('HEAD', withQuery(`/v1/systems/${enc(ctr)}/archive`, { path }));
    res.resume();
    return statOf(res.headers[PATH_STAT_HEADER.toLowerCase()]);
  } catch (e) {
    if (e instanceof DaemonError && e.status === 404) {
      // A HEAD answer has no body: tell a missing container from a missing path.
      await stream('GET', `/v1/systems/${enc(ctr)}`).then((r) => r.resume());
      return undefined;
    }
    throw e;
  }
}

/** A host destination as docker's CopyInfoDestinationPath sees it: symlinks followed; a missing path needs its parent. */
async function hostDestination(p: string): Promise<{ path: string; exists: boolean; isDir: boolean }> {
  let path = p;
  for (let n = 0; ; n++) {
    const st = await lstat(path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    if (st && !st.isSymbolicLink()) return { path, exists: true, isDir: st.isDirectory() };
    if (!st) {
      const parent = await stat(dirname(path)).catch(() => undefined);
      if (!parent) throw new CliError(`destination directory ${dirname(path)} does not exist`);
      if (!parent.isDirectory()) throw new CliError(`destination ${dirname(path)} is not a directory`);
      return { path, exists: false, isDir: false };
    }
    if (n >= 32) throw new CliError(`too many symbolic links in ${p}`);
    const target = await readlink(path);
    path = isAbsolute(target) ? target : join(dirname(path), target);
  }
}

/** Where docker's PrepareArchiveCopy puts a copy: into an existing directory as it is, else under the destination's
 *  name into its parent. */
function placement(srcIsDir: boolean, dst: { path: string; exists: boolean; isDir: boolean }, dstAsked: string): { dir: string; rename?: string } {
  if (dst.exists && dst.isDir) return { dir: dst.path };
  if (dst.exists && srcIsDir) throw new CliError(`cannot copy a directory to a file: ${dstAsked}`);
  if (!dst.exists && !srcIsDir && endsWithSeparator(dstAsked)) throw new CliError(`no such directory: ${dstAsked}`);
  return { dir: dirname(dst.path), rename: basename(dst.path) };
}

export async function cp(source: string, destination: string, o: { archive?: boolean; followLink?: boolean; quiet?: boolean }): Promise<number> {
  const src = splitCpArg(source);
  const dst = splitCpArg(destination);
  if (src.container !== undefined && dst.container !== undefined) throw new CliError('copying between containers is not supported');
  if (src.container === undefined && dst.container === undefined) throw new CliError('must specify at least one container source');
  if (src.container !== undefined) await copyOut(src.container, src.path, dst.path, !!o.followLink);
  else await copyIn(src.path, dst.container!, dst.path, !!o.archive, !!o.followLink);
  return 0;
}

async function copyOut(ctr: string, srcPath: string, dstPath: string, followLink: boolean): Promise<void> {
  if (!srcPath) throw new CliError('the path in the container is empty');
  let path = srcPath;
  let name: string | undefined; // the link's own name when -L copies what it points at
  if (followLink) {
    const st = await containerStat(ctr, srcPath);
    if (st && st.mode & GO_SYMLINK && st.linkTarget) {
      path = st.linkTarget;
      if (lastElement(srcPath) !== '.' && basename(path) !== basename(srcPath)) name = basename(srcPath);
    }
  }
  const res = await stream('GET', withQuery(`/v1/systems/${enc(ctr)}/archive`, { path }));
  const st = statOf(res.headers[PATH_STAT_HEADER.toLowerCase()]);
  if (dstPath === '-') {
    if (process.stdout.isTTY) {
      res.destroy();
      throw new CliError('refusing to write a tar archive to a terminal: redirect the output');
    }
    await pipeline(res, process.stdout);
    return;
  }
  const dst = await hostDestination(resolve(dstPath));
  const where = placement((st.mode & GO_DIR) !== 0, dst, dstPath);
  // Into a directory the top entry keeps its name (the link's own with -L); elsewhere it takes the destination's.
  const newName = where.rename ?? name;
  const input = newName ? rebase(res, newName) : (res as Readable);
  // Owned by whoever runs the copy, as docker sets it; rooted at the directory it lands in.
  await putArchive(hostTree({ rootfs: where.dir, mounts: [] }), '/', input, { owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } });
}

async function copyIn(srcPath: string, ctr: string, dstPath: string, archive: boolean, followLink: boolean): Promise<void> {
  if (!dstPath) throw new CliError('the path in the container is empty');
  let dst = { path: dstPath, stat: await containerStat(ctr, dstPath) };
  // A destination that is a symbolic link is its target (followed once, as docker does).
  if (dst.stat && dst.stat.mode & GO_SYMLINK && dst.stat.linkTarget) dst = { path: dst.stat.linkTarget, stat: await containerStat(ctr, dst.stat.linkTarget) };
  const exists = dst.stat !== undefined;
  const isDir = exists && (dst.stat!.mode & GO_DIR) !== 0;
  const query = { noOverwriteDirNonDir: true, ...(archive ? { copyUIDGID: true } : {}) };
  let dir: string;
  let body: Readable;
  if (srcPath === '-') {
    if (!isDir) throw new CliError(`destination "${ctr}:${dstPath}" must be a directory`);
    if (process.stdin.isTTY) throw new CliError('a copy from stdin needs a tar archive on stdin');
    dir = dst.path;
    body = process.stdin;
  } else {
    const abs = resolve(srcPath);
    // Without -L a symbolic link is copied as a link; its parent directories are followed either way.
    const local = followLink ? await realpath(abs).catch(() => abs) : join(await realpath(dirname(abs)).catch(() => dirname(abs)), basename(abs));
    const st = await (followLink ? stat(local) : lstat(local)).catch(() => undefined);
    if (!st) throw new CliError(`could not find the file ${srcPath}: no such file or directory`);
    const srcBase = lastElement(srcPath) === '.' ? '.' : basename(abs);
    const where = placement(st.isDirectory(), { path: dst.path, exists, isDir }, dstPath);
    dir = where.dir;
    body = tarOf(hostTree({ rootfs: '', mounts: [] }), local, where.rename ?? srcBase);
  }
  const res = await stream('PUT', withQuery(`/v1/systems/${enc(ctr)}/archive`, { path: dir, ...query }), { body, headers: { 'Content-Type': 'application/x-tar' } });
  res.resume();
}

/** silo export: the container's own filesystem as a tar, to -o FILE or to stdout unless that is a terminal. */
export async function exportRoot(ref: string, o: { output?: string }): Promise<number> {
  if (!o.output && process.stdout.isTTY) throw new CliError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const res = await stream('GET', `/v1/systems/${enc(ref)}/export`);
  await pipeline(res, o.output ? createWriteStream(o.output, { mode: 0o644 }) : process.stdout);
  return 0;
}
