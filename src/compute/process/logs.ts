// Reading conmon's k8s-file logs: one record a line, `<RFC3339Nano> <stdout|stderr> <F|P> <data>`. F ends a line
// (conmon dropped the newline), P is a partial line continued by the next record of the same stream.

import { open, stat } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import type { LogEntry } from '../backend.js';

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

/** Splits a chunk into complete lines; returns the unfinished rest. */
function splitLines(buf: Buffer, onLine: (l: Buffer) => void): Buffer {
  let start = 0;
  let i: number;
  while ((i = buf.indexOf(0x0a, start)) >= 0) {
    onLine(buf.subarray(start, i));
    start = i + 1;
  }
  return buf.subarray(start);
}

export interface ReadLogsOptions { follow: boolean; tail?: number; since?: string }

/**
 * Emit the log's entries (filtered by since, limited to the last `tail`), then with follow keep emitting new ones
 * until `exited()` is true and the file is drained, or the signal aborts.
 */
export async function readLogFile(
  path: string,
  exited: () => Promise<boolean>,
  opts: ReadLogsOptions,
  onEntry: (e: LogEntry) => void,
  signal: AbortSignal,
): Promise<void> {
  const since = opts.since ? timeNs(opts.since) : undefined;
  const keep = (e: LogEntry) => since === undefined || timeNs(e.time) >= since;
  const asm = new LineAssembler();
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  let watcher: FSWatcher | undefined;
  try {
    let offset = 0;
    let rest: Buffer = Buffer.alloc(0);
    const readMore = async (sink: (e: LogEntry) => void): Promise<boolean> => {
      const size = (await fh.stat()).size;
      if (size <= offset) return false;
      const chunk = Buffer.alloc(size - offset);
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, offset);
      offset += bytesRead;
      rest = splitLines(Buffer.concat([rest, chunk.subarray(0, bytesRead)]), (l) => {
        const r = parseRecord(l);
        const e = r && asm.push(r);
        if (e && keep(e)) sink(e);
      });
      return bytesRead > 0;
    };

    // History first; tail applies to it only.
    const history: LogEntry[] = [];
    await readMore((e) => history.push(e));
    const done = !opts.follow || (await exited());
    if (done) {
      await readMore((e) => history.push(e));
      for (const e of asm.flush()) if (keep(e)) history.push(e);
    }
    const start = opts.tail !== undefined && opts.tail >= 0 ? Math.max(0, history.length - opts.tail) : 0;
    for (const e of history.slice(start)) {
      if (signal.aborted) return;
      onEntry(e);
    }
    if (done) return;

    // Follow: wake on file changes, with a poll as fallback (watch events can be missed).
    let wake: (() => void) | undefined;
    try {
      watcher = watch(path, () => wake?.());
    } catch {
      watcher = undefined;
    }
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        if (await readMore(onEntry)) continue;
        if (await exited()) {
          await readMore(onEntry); // conmon drains stdio before writing the exit file
          if (!signal.aborted) for (const e of asm.flush()) if (keep(e)) onEntry(e);
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
    await fh.close();
  }
}

export async function fileExists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
