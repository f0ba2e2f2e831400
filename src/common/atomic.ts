import { closeSync, existsSync, fsync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { open, rename, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * The temp file of an atomic write of `name`: hidden, unique, and recognisable by TEMP_RE. A counter from a random
 * start, not random bytes per write: two writes of one process never share a name, and a name a crashed process left
 * is only written over (each write opens its temp file truncating). randomBytes cost ~35 µs a call here, 18 a container.
 */
let tempSeq = randomBytes(4).readUInt32BE(0);
const tempName = (name: string) => `.${name}.${(tempSeq++ >>> 0).toString(16).padStart(8, '0')}.tmp`;
const TEMP_RE = /^\..+\.[0-9a-f]{8}\.tmp$/;

/**
 * Remove the temp files interrupted atomic writes left in `dir` (not below it: an owner names each directory it
 * writes records in, never one with a container's or a user's files). Returns how many went; a missing dir is none.
 */
export async function sweepTempFiles(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!e.isFile() || !TEMP_RE.test(e.name)) continue;
    await rm(join(dir, e.name), { force: true });
    n++;
  }
  return n;
}

/** Up to this size the file is made with synchronous calls (below); larger ones go through the thread pool. */
const SMALL = 64 * 1024;

const fsyncFd = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));

/**
 * Write a file so that readers see the old content or the new, never a torn one: temp, fsync, rename, fsync dir.
 * `durable: false` leaves out both fsyncs, for files that matter only while the machine is up (bundles, a container's
 * resolv.conf and hosts, intents that cover only kernel objects): readers after a daemon crash still see the whole
 * file, and a machine crash takes what they describe with it. Each fsync here costs 1–7 ms on this kind of disk.
 * A small file (the records, all of them) is opened, written, closed and renamed synchronously — page-cache work of
 * microseconds, where each call through the thread pool costs a round trip — and only its fsyncs wait in the pool:
 * ~17 such writes per container made and removed were ~120 pool round trips. The directory is made only when the
 * open says it is missing.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, o: { durable?: boolean } = {}): Promise<void> {
  if (data.length > SMALL) return writeLargeFileAtomic(path, data, mode, o);
  const durable = o.durable !== false;
  const dir = dirname(path);
  const tmp = join(dir, tempName(basename(path)));
  let fd: number;
  try {
    fd = openSync(tmp, 'w', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dir, { recursive: true });
    fd = openSync(tmp, 'w', mode);
  }
  try {
    writeFileSync(fd, data);
    if (durable) await fsyncFd(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  if (!durable) return;
  const dfd = openSync(dir, 'r');
  try {
    await fsyncFd(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** writeFileAtomic through the thread pool, for a file large enough that writing it would hold the event loop. */
async function writeLargeFileAtomic(path: string, data: string | Uint8Array, mode: number, o: { durable?: boolean }): Promise<void> {
  const durable = o.durable !== false;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, tempName(basename(path)));
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  if (!durable) return;
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export async function writeJsonAtomic(path: string, value: unknown, o: { durable?: boolean } = {}): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', 0o600, o);
}

/** Read a JSON document, or undefined when the file does not exist. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    // Synchronously, as writeFileAtomic: a record is a few KiB in the page cache, and an asynchronous readFile is four
    // thread-pool round trips (open, fstat, read, close) for each of the ~15 a container's lifecycle reads.
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * A small file's text (a state file of a few bytes, a /proc or /sys file), '' when it is missing or unreadable: read
 * synchronously, as readJson, since an asynchronous readFile is four thread-pool round trips for microseconds of work.
 */
export function readSmallText(path: string): string {
  if (!existsSync(path)) return '';
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // gone meanwhile, or not readable
  }
}

/**
 * mkdir -p that says why a level could not be made: Node's recursive mkdir reports a full disk (or a missing
 * permission) on an intermediate level as ENOENT of the last one.
 */
export async function makeDirs(dir: string, mode = 0o700): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const levels: string[] = [];
  for (let p = dir; p !== dirname(p); p = dirname(p)) levels.unshift(p);
  for (const p of levels) {
    await mkdir(p, { mode }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

/**
 * Remove a file, none there being no error (rm's `force`), with one synchronous unlink. An rm() through the thread
 * pool is an lstat and an unlink, each a round trip that wakes a worker thread and then the event loop; on a host
 * where a context switch is dear (a paravirtualised guest such as this one) ~150 of them cost each container
 * ~10 ms of CPU. For the small files of records and runtime state, never a directory.
 */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
  }
}
