// Reading conmon's k8s-file logs: one record a line, `<RFC3339Nano> <stdout|stderr> <F|P> <data>`. F ends a line
// (conmon dropped the newline), P is a partial line continued by the next record of the same stream.

import { open, stat, type FileHandle } from 'node:fs/promises';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { LogEntry } from './backend.js';

export interface LogRecord { time: string; stream: 'stdout' | 'stderr'; partial: boolean; data: Buffer }

/** conmon writes `+00:00`; the API speaks RFC3339Nano, so use `Z` for UTC. */
const normTime = (t: string) => t.replace(/\+00:00$/, 'Z');

export function parseRecord(line: Buffer): LogRecord | undefined {
  const s1 = line.indexOf(0x20);
  const s2 = s1 < 0 ? -1 : line.indexOf(0x20, s1 + 1);
  const s3 = s2 < 0 ? -1 : line.indexOf(0x20, s2 + 1);
  if (s3 < 0) {
    // "<time> <stream> <tag>" with empty data and no trailing space is not something conmon writes; skip it.
    return undefined;
  }
  const stream = line.subarray(s1 + 1, s2).toString();
  const tag = line.subarray(s2 + 1, s3).toString();
  if ((stream !== 'stdout' && stream !== 'stderr') || (tag !== 'F' && tag !== 'P')) return undefined;
  return { time: normTime(line.subarray(0, s1).toString()), stream, partial: tag === 'P', data: Buffer.from(line.subarray(s3 + 1)) };
}

/** Nanoseconds since the epoch of an RFC3339(Nano) time, for exact `since` comparisons. */
export function timeNs(t: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/.exec(t.trim());
  if (!m) {
    const ms = Date.parse(t);
    if (Number.isNaN(ms)) return 0n;
    return BigInt(ms) * 1000000n;
  }
  const base = Date.parse(`${m[1]}${m[3] ?? 'Z'}`);
  const frac = BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9) || '0');
  return BigInt(base) * 1000000n + frac;
}

/** Joins partial records into whole lines, per stream. */
export class LineAssembler {
  private partial: Record<'stdout' | 'stderr', { time: string; parts: Buffer[] } | undefined> = { stdout: undefined, stderr: undefined };

  push(r: LogRecord): LogEntry | undefined {
    const p = this.partial[r.stream];
    if (r.partial) {
      if (p) p.parts.push(r.data);
      else this.partial[r.stream] = { time: r.time, parts: [r.data] };
      return undefined;
    }
    this.partial[r.stream] = undefined;
    const data = Buffer.concat([...(p?.parts ?? []), r.data, Buffer.from('\n')]);
    return { time: p?.time ?? r.time, stream: r.stream, data };
  }

  /** Lines the process never finished (it exited mid-line). */
  flush(): LogEntry[] {
    const out: LogEntry[] = [];
    for (const s of ['stdout', 'stderr'] as const) {
      const p = this.partial[s];
      if (p) out.push({ time: p.time, stream: s, data: Buffer.concat(p.parts) });
      this.partial[s] = undefined;
    }
    return out.sort((a, b) => (timeNs(a.time) < timeNs(b.time) ? -1 : 1));
  }
}

export interface ReadLogsOptions { follow: boolean; tail?: number; since?: string }

/** Entries go to a sink that may ask the reader to wait (a client reading slowly): back-pressure, not buffering. */
export type LogSink = (e: LogEntry) => unknown;

/** How much of a log is read at once: no request holds more of a log than this (plus one record) in memory. */
const CHUNK = 256 * 1024;
/** A "line" longer than this without a newline is not conmon's: it is cut there rather than held. */
const MAX_RECORD = 1024 * 1024;

/** The log's files, oldest first: the rotated ones (path.N … path.1) that exist, then path itself. */
export async function logFiles(path: string): Promise<string[]> {
  const older: string[] = [];
  for (let i = 1; i <= 100 && (await fileExists(`${path}.${i}`)); i++) older.unshift(`${path}.${i}`);
  return [...older, path];
}

/** Where reading starts: a file of the list and an offset in it. */
interface Cut { file: number; offset: number }

/**
 * Reads backwards from the end, a chunk at a time, to where the last `tail` whole lines (or those since `since`)
 * begin: `docker logs --tail 5` on a log of any size reads a few chunks, never the file.
 */
async function findCut(files: FileHandle[], tail: number | undefined, since: bigint | undefined): Promise<Cut> {
  if (tail === undefined && since === undefined) return { file: 0, offset: 0 };
  let complete = 0;
  for (let fi = files.length - 1; fi >= 0; fi--) {
    const fh = files[fi];
    let pos = (await fh.stat()).size;
    let head: Buffer = Buffer.alloc(0); // bytes at [pos, pos + head.length) not yet known to start a line
    let last = true; // the file's last bytes: a record still being written has no newline yet and is not counted
    while (pos > 0) {
      const n = Math.min(CHUNK, pos);
      pos -= n;
      const chunk = Buffer.alloc(n);
      await fh.read(chunk, 0, n, pos);
      const buf = Buffer.concat([chunk, head]);
      let end = buf.length;
      if (last) {
        end = buf.lastIndexOf(0x0a) + 1; // past the last newline (0 when none yet)
        if (end > 0 || pos === 0) last = false;
        if (last) { head = buf.length > MAX_RECORD ? Buffer.alloc(0) : buf; continue; }
      }
      // Lines in buf[.. end), last to first; the first one is whole only at the file's start.
      let stop = end;
      while (stop > 0) {
        const nl = stop >= 2 ? buf.lastIndexOf(0x0a, stop - 2) : -1;
        if (nl < 0 && pos > 0) break;
        const start = nl + 1;
        const r = parseRecord(buf.subarray(start, stop - 1));
        if (r) {
          if (since !== undefined && timeNs(r.time) < since) return { file: fi, offset: pos + stop };
          if (!r.partial && tail !== undefined && ++complete > tail) return { file: fi, offset: pos + stop };
        }
        stop = start;
      }
      head = buf.subarray(0, stop);
      if (head.length > MAX_RECORD) head = Buffer.alloc(0);
    }
  }
  return { file: 0, offset: 0 };
}

/**
 * The log's files opened together, oldest first, each once. Held open, a file the writer renames or removes later
 * still reads whole; but a rotation between the listing and the opens shifts names under the opens (one file opened
 * twice, another missed), so the names are listed again and compared by inode until they held still.
 */
async function openFiles(path: string, listFiles: (path: string) => Promise<string[]>): Promise<FileHandle[]> {
  for (let attempt = 1; ; attempt++) {
    const handles: FileHandle[] = [];
    const inos: number[] = [];
    for (const name of await listFiles(path)) {
      const fh = await open(name, 'r').catch(() => undefined);
      if (!fh) continue;
      const ino = (await fh.stat()).ino;
      if (inos.includes(ino)) await fh.close(); // a second name of a file already open
      else handles.push(fh), inos.push(ino);
    }
    const again = [...new Set((await Promise.all((await listFiles(path)).map((n) => stat(n).then((x) => x.ino, () => -1)))).filter((i) => i >= 0))];
    if (attempt >= 5 || (again.length === inos.length && again.every((i, k) => i === inos[k]))) return handles;
    await Promise.all(handles.map((h) => h.close()));
  }
}

/**
 * Emit the log's entries (filtered by since, limited to the last `tail`), then with follow keep emitting new ones
 * until `exited()` is true and the file is drained, or the signal aborts. The log may be rotated (path → path.1, a
 * new path) while it is read: a reader drains the file it has open, then goes on with the new one.
 */
export async function readLogFile(
  path: string,
  exited: () => Promise<boolean>,
  opts: ReadLogsOptions,
  onEntry: LogSink,
  signal: AbortSignal,
  /** The log's files, oldest first, path last: a writer that rotates by itself may have more than logFiles finds. */
  listFiles: (path: string) => Promise<string[]> = logFiles,
): Promise<void> {
  const since = opts.since ? timeNs(opts.since) : undefined;
  const keep = (e: LogEntry) => since === undefined || timeNs(e.time) >= since;
  const asm = new LineAssembler();
  const files = await openFiles(path, listFiles);
  const tail = opts.tail !== undefined && opts.tail >= 0 ? opts.tail : undefined;
  const cut = await findCut(files, tail, since).catch(async (e) => {
    await Promise.all(files.map((h) => h.close()));
    throw e;
  });
  const emit = async (e: LogEntry | undefined) => {
    if (!e || !keep(e) || signal.aborted) return;
    const wait = onEntry(e);
    if (wait instanceof Promise) await wait;
  };

  let rest: Buffer = Buffer.alloc(0);
  /** Reads what the open file has past `offset`, a chunk at a time; the new offset. */
  const drain = async (fh: FileHandle, offset: number): Promise<number> => {
    const chunk = Buffer.alloc(CHUNK);
    while (!signal.aborted) {
      const { bytesRead } = await fh.read(chunk, 0, CHUNK, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      let buf = rest.length ? Buffer.concat([rest, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      let start = 0;
      for (let i; (i = buf.indexOf(0x0a, start)) >= 0; start = i + 1) {
        const r = parseRecord(buf.subarray(start, i));
        await emit(r && asm.push(r));
      }
      buf = buf.subarray(start);
      rest = buf.length > MAX_RECORD ? Buffer.alloc(0) : Buffer.from(buf); // a copy: chunk is reused
    }
    return offset;
  };

  // History: from the cut through every file to the current one.
  let fh: FileHandle | undefined;
  let offset = 0;
  let watcher: FSWatcher | undefined;
  try {
    for (let fi = cut.file; fi < files.length && !signal.aborted; fi++) {
      await fh?.close();
      fh = files[fi];
      rest = Buffer.alloc(0);
      offset = await drain(fh, fi === cut.file ? cut.offset : 0);
    }
    if (!fh || !opts.follow || (await exited())) {
      if (fh) await drain(fh, offset);
      for (const e of asm.flush()) await emit(e);
      return;
    }

    // Follow: wake on changes in the log's directory (a write, a rotation), with a poll as fallback.
    let wake: (() => void) | undefined;
    try {
      watcher = watch(dirname(path), () => wake?.());
      watcher.on('error', () => {});
    } catch {
      watcher = undefined;
    }
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        const before = offset;
        offset = await drain(fh, offset);
        if (offset > before) continue;
        // Rotated: the open file is drained; the new one at path is read from its start.
        const now = await stat(path).catch(() => undefined);
        if (now && now.ino !== (await fh.stat()).ino) {
          const next = await open(path, 'r').catch(() => undefined);
          if (next) {
            offset = await drain(fh, offset);
            await fh.close();
            fh = next;
            offset = 0;
            rest = Buffer.alloc(0);
            continue;
          }
        }
        if (await exited()) {
          await drain(fh, offset); // conmon drains stdio before writing the exit file
          for (const e of asm.flush()) await emit(e);
          return;
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, 250);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  } finally {
    watcher?.close();
    await fh?.close();
    await Promise.all(files.map((h) => h.close())); // those before the cut, or after an abort; closing twice is a no-op
  }
}

/** existsSync: one stat on the event loop, no thread-pool round trip and no error object for a missing file. */
export async function fileExists(p: string): Promise<boolean> {
  return existsSync(p);
}
