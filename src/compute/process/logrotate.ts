// Size-bounded logs with conmon as the one writer. conmon (--log-size-max) replaces the file itself before a record
// would pass the size, so no file ever exceeds max-size however fast the container prints or however busy the daemon
// is (a rotation decided by the daemon lags the writer by what it prints meanwhile: MiBs). conmon replaces a file by
// opening `<path>.tmp` and renaming it over `<path>`, which alone would drop the full file. So the daemon keeps:
//   <path>.cur   a second name of the file conmon writes: the full file survives its replacement;
//   <path>.tmp   the next file, made in advance, with a second name <path>.next: the new file is held from its start.
// Afterwards, with no hurry, the daemon shifts the names: the full files become <path>.1 … <path>.(max-file - 1).
// If conmon fills two whole files before the daemon looks (it is down), the files between are lost: what is kept
// then is the oldest two and the newest, in order. With max-file=1 there is nothing to keep: conmon truncates.
// Those two held files are why conmon's files are a quarter of max-size (filePlan): the whole stays within
// max-size × max-file on disk even while no daemon looks.

import { closeSync, linkSync, openSync, renameSync, statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { removeFile } from '../../common/atomic.js';

// The calls here are synchronous but for dropping a full file: a name change or a stat in the state directory takes
// microseconds, where each call through the thread pool is a round trip to a worker and back (about a dozen per
// container started).

/**
 * How a log bounded by docker's max-size × max-file is cut into conmon's files. While the daemon is not looking,
 * conmon can finish two files beyond the ones named (held as .cur and .next, above): with `keep` files named, up to
 * keep + 2 exist. Files of a quarter of max-size, 4 × max-file − 2 of them kept, make that worst case exactly
 * max-size × max-file, and what is kept is never less than docker keeps ((max-file − 1) × max-size and the current).
 */
export function filePlan(maxSize: number, maxFiles: number): { fileSize: number; keep: number } {
  if (maxFiles <= 1) return { fileSize: maxSize, keep: 1 }; // truncated in place by conmon: one file, ever
  return { fileSize: Math.max(1, Math.floor(maxSize / 4)), keep: 4 * maxFiles - 2 };
}

const names = (path: string) => ({ cur: `${path}.cur`, next: `${path}.next`, tmp: `${path}.tmp` });
const inode = (p: string) => statSync(p, { throwIfNoEntry: false })?.ino;
const ignoring = (codes: string[], fn: () => void) => {
  try {
    fn();
  } catch (e) {
    if (!codes.includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  }
};

/** A full log file (up to a quarter of max-size) is unlinked through the thread pool: freeing it may take a while. */
const dropLog = (p: string) => unlink(p).catch((e: NodeJS.ErrnoException) => {
  if (e.code !== 'ENOENT') throw e;
});

/** Renames `full` (oldest first) into path.1 … (newest .1), shifting the rotated files up; none beyond keep-1. */
async function shiftIn(path: string, keep: number, full: string[]): Promise<void> {
  const k = full.length;
  if (!k) return;
  for (let i = keep - 1; i >= 1; i--) {
    if (i + k > keep - 1) await dropLog(`${path}.${i}`);
    else ignoring(['ENOENT'], () => renameSync(`${path}.${i}`, `${path}.${i + k}`));
  }
  for (let j = 0; j < k; j++) {
    const n = k - j; // the newest gets .1
    if (n > keep - 1) await dropLog(full[j]);
    else ignoring(['ENOENT'], () => renameSync(full[j], `${path}.${n}`));
  }
}

/** The next file conmon will open, made now and held by a second name. */
async function arm(path: string): Promise<void> {
  const { next, tmp } = names(path);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return; // armed already (or conmon is opening its own)
    throw e;
  }
  closeSync(fd);
  removeFile(next);
  // conmon may have taken it meanwhile: then it is the current file, found by the next settle.
  ignoring(['ENOENT', 'EEXIST'], () => linkSync(tmp, next));
}

const settling = new Map<string, Promise<void>>();

/**
 * Names what conmon has done since the last look: full files shifted in as path.1 …, the current one held as .cur,
 * the next one armed. Cheap when nothing changed (four stats). Calls for one path run one after another.
 */
export function settleLog(path: string, keep: number): Promise<void> {
  const prev = settling.get(path) ?? Promise.resolve();
  const p = prev.then(() => settleOnce(path, keep));
  const tail = p.catch(() => {});
  settling.set(path, tail);
  void tail.then(() => settling.get(path) === tail && settling.delete(path));
  return p;
}

async function settleOnce(path: string, keep: number): Promise<void> {
  if (keep <= 1) return;
  const { cur, next, tmp } = names(path);
  const [p, c, n, t] = [inode(path), inode(cur), inode(next), inode(tmp)];
  if (p === undefined) return;
  if (c !== p) {
    const full: string[] = [];
    if (c !== undefined) full.push(cur);
    const nextTaken = n !== undefined && n !== t; // conmon opened it (it has no .tmp name any more)
    if (nextTaken && n !== p) full.push(next); // …and filled it and replaced it in turn
    await shiftIn(path, keep, full);
    if (nextTaken && n === p) renameSync(next, cur);
    else ignoring(['EEXIST', 'ENOENT'], () => linkSync(path, cur));
  }
  await arm(path);
}

/**
 * Before conmon starts on a log a former run wrote: conmon counts from zero, so a file it appends to could pass the
 * size by what it held. The former run's file becomes path.1 and conmon starts on an empty, held file. With
 * max-file=1 the former file is kept and appended to (as docker's max-file=1): that first file may reach its old
 * size plus max-size, once.
 */
export async function startLog(path: string, keep: number): Promise<void> {
  if (keep <= 1) return;
  await settleLog(path, keep);
  const { cur } = names(path);
  const size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
  if (size > 0) {
    await shiftIn(path, keep, [path]);
    removeFile(cur);
  }
  closeSync(openSync(path, 'a', 0o600));
  await settleLog(path, keep);
}

/** Files conmon has finished that the daemon has not named yet, oldest first: read after path.1 and before path. */
export async function unsettled(path: string): Promise<string[]> {
  const { cur, next, tmp } = names(path);
  const [p, c, n, t] = [inode(path), inode(cur), inode(next), inode(tmp)];
  if (p === undefined || c === undefined || c === p) return [];
  return n !== undefined && n !== t && n !== p ? [cur, next] : [cur];
}
