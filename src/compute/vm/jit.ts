// TCG's code cache, given back when it holds only dead code.
//
// Under TCG QEMU translates guest code into a cache of tb-size MiB; when the cache is full it flushes it and fills it
// again from its start, but it never returns a page. A clone's start translates about as much as the 16 MiB cache
// holds (often more, with a flush), so without this every VM keeps the whole cache resident for life, while an idle
// guest's code needs 2–5 MiB of it: after a flush everything above the fill point is dead code.
//
// With `split-wx=on` the cache is a memfd QEMU maps twice (written through one mapping, run through the other), so the
// daemon can punch the dead tail out of the file from outside (/proc/<pid>/map_files). That is safe because of how
// QEMU (7.2's tcg/region.c) fills it: with one vCPU the cache is a single region, filled upward from its start (after a
// prologue of a few hundred bytes), and `info jit`'s "gen code size" is how far; a flush starts again from the start.
// Nothing QEMU uses lies above that point, and the VM is stopped while the hole is punched, so nothing is being
// translated into it. A VM with more vCPUs has one region per thread, not filled in order: it is left alone.
//
// Only a flush makes the code below the fill point dead, and QEMU 7.2 has no command that flushes (a gdbstub
// breakpoint no longer does). When a VM still holds more than an idle guest needs after its start's trim and no flush
// comes, its agent runs a little filler code (op_jitfill: each few bytes a new translation block) to overflow the cache.

import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from '../../common/log.js';
import { oneLine } from '../../common/errors.js';
import type { Qmp } from './qmp.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** Above the fill point: the prologue before the region's start and the alignment of the next block. */
const SLACK = 64 * 1024;
/** Less than this to give back is not worth stopping the VM for. */
const MIN_PUNCH = 2 * MiB;
/** First look this long after a VM is watched, then twice as long each time, up to MAX_EVERY. */
const FIRST_LOOK_MS = 2000;
const MAX_EVERY_MS = 60_000;
/** Still this much in use after a start's trim: the cache holds the start's code, which only a flush frees. */
const FILL_ABOVE = 6 * MiB;
/** Bytes of host code TCG makes of a byte of the agent's filler: ≈134 measured once on QEMU 7.2, ≈83 seen since. A
 *  fill asks for 10% more than the cache has left at this ratio: what overflows stays in use, dead, until the next
 *  flush. One that fell short is repeated, sized by the ratio it showed. */
const HOST_PER_GUEST_BYTE = 134;
const MAX_FILLS = 3;
/** Flushes the filler may force in a VM's life: each leaves the guest's working set and its own exit in use, so a
 *  guest whose idle code stays above FILL_ABOVE would otherwise be filled and flushed again every minute. */
const MAX_ROUNDS = 2;

export interface JitState {
  /** Bytes of translated code in the cache now: how far it is filled. */
  used: number;
  capacity: number;
  flushes: number;
}

/** `info jit`'s "gen code size A/B" and "TB flush count N"; undefined if this QEMU words it otherwise. */
export function parseInfoJit(text: string): JitState | undefined {
  const g = /gen code size\s+(\d+)\/(\d+)/.exec(text);
  const f = /TB flush count\s+(\d+)/.exec(text);
  return g && f ? { used: Number(g[1]), capacity: Number(g[2]), flushes: Number(f[1]) } : undefined;
}

/** The range to punch out of a cache file of `fileSize` bytes filled to `used`: page-aligned, or none if too small. */
export function deadTail(used: number, fileSize: number, page = 4096): { offset: number; length: number } | undefined {
  const offset = Math.ceil((used + SLACK) / page) * page;
  return fileSize - offset >= MIN_PUNCH ? { offset, length: fileSize - offset } : undefined;
}

/**
 * Host code bytes per filler byte for the next fill: what the last fill that fell short of a flush made of its filler
 * (the cache's growth since; the idle guest's own translations meanwhile, a few KiB against the MiB of a fill, count
 * in), or HOST_PER_GUEST_BYTE for a first fill or a growth that does not make sense.
 */
export function fillRatio(last: { kib: number; usedBefore: number } | undefined, usedNow: number): number {
  if (!last) return HOST_PER_GUEST_BYTE;
  const seen = (usedNow - last.usedBefore) / (last.kib * 1024);
  return seen >= 8 && seen < HOST_PER_GUEST_BYTE ? seen : HOST_PER_GUEST_BYTE;
}

/** A flush seen (`flushes` of them) and nothing dead left above the fill point: the round of fills, if any, is over. */
function settled(w: Watched, flushes: number): void {
  w.trimmedAt = flushes;
  w.fills = 0;
  w.lastFill = undefined;
}

/** The cache's memfd as a path the daemon can open (its RW mapping's map_files entry), with the file's size. */
async function cacheFile(pid: number): Promise<{ path: string; size: number } | undefined> {
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
  const m = /^([0-9a-f]+-[0-9a-f]+) rw-s 0+ \S+ \d+\s+\/memfd:tcg-jit/m.exec(maps);
  if (!m) return undefined;
  const path = `/proc/${pid}/map_files/${m[1]}`;
  return { path, size: (await stat(path)).size };
}

interface Watched {
  /** The VM's monitor and QEMU's pid; `fill` has its agent run that many KiB of filler code (op_jitfill). */
  vm: () => Promise<{ qmp: Qmp; pid: number; fill?: (kib: number) => Promise<unknown> } | undefined>;
  timer?: NodeJS.Timeout;
  every: number;
  /** The flush count at the last trim: until it changes, nothing above the fill point has become dead. */
  trimmedAt?: number;
  /** Fills asked of the guest with no flush since (at most MAX_FILLS). */
  fills?: number;
  /** The last of them: its size and the cache's use before it, for the ratio the next one is sized by. */
  lastFill?: { kib: number; usedBefore: number };
  /** Rounds of fills begun (a round ends with a flush, or after MAX_FILLS): at most MAX_ROUNDS. */
  rounds?: number;
  /** This VM cannot be trimmed (more than one vCPU, no memfd cache, an `info jit` we cannot read). */
  never?: boolean;
  /** Trims, pauses and resumes of this VM, one at a time. */
  chain: Promise<unknown>;
}

export class JitTrim {
  private readonly watched = new Map<string, Watched>();

  constructor(private readonly log: Logger, private readonly firstLookMs = FIRST_LOOK_MS) {}

  /** Look at a VM's cache now and then while it runs (a second call for the same VM does nothing). */
  watch(id: string, vm: Watched['vm']): void {
    if (this.watched.has(id)) return;
    const w: Watched = { vm, every: this.firstLookMs, chain: Promise.resolve() };
    this.watched.set(id, w);
    this.schedule(id, w);
  }

  forget(id: string): void {
    clearTimeout(this.watched.get(id)?.timer);
    this.watched.delete(id);
  }

  /**
   * Run `fn` with no trim of this VM under way, and none starting until it is done: a trim stops and continues the
   * VM, so a pause or resume (or a look at whether it is paused) must not interleave with one.
   */
  serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const w = this.watched.get(id);
    if (!w) return fn();
    const p = w.chain.then(fn, fn);
    w.chain = p.catch(() => {});
    return p;
  }

  private schedule(id: string, w: Watched): void {
    w.timer = setTimeout(() => {
      void this.serial(id, () => this.look(id, w)).then(() => {
        if (this.watched.get(id) !== w || w.never) return;
        w.every = Math.min(w.every * 2, MAX_EVERY_MS);
        this.schedule(id, w);
      });
    }, w.every);
    w.timer.unref();
  }

  private async look(id: string, w: Watched): Promise<void> {
    try {
      const vm = await w.vm();
      if (!vm) return this.forget(id);
      const { qmp, pid } = vm;
      // Paused by its user (or not running): a trim's `cont` would undo that.
      if ((await qmp.execute<{ status: string }>('query-status')).status !== 'running') return;
      if ((await qmp.execute<unknown[]>('query-cpus-fast')).length !== 1) return void (w.never = true);
      const infoJit = async () => parseInfoJit(await qmp.execute<string>('human-monitor-command', { 'command-line': 'info jit' }));
      const before = await infoJit();
      if (!before) return void (w.never = true);
      if (before.flushes === w.trimmedAt) {
        // Trimmed after the start, and no flush since, yet still holding more than an idle guest's code: an idle
        // guest translates too little to fill the rest (≈1 KiB/s), so that would stay resident for hours. The agent
        // runs just enough new code to overflow the cache (tens of KiB); the next look trims it.
        const fills = w.fills ?? 0;
        const rounds = w.rounds ?? 0;
        if (vm.fill && before.used > FILL_ABOVE && fills < MAX_FILLS && (fills > 0 || rounds < MAX_ROUNDS)) {
          if (fills === 0) w.rounds = rounds + 1;
          w.fills = fills + 1;
          const kib = Math.min(4096, Math.ceil(((before.capacity - before.used) * 1.1) / fillRatio(w.lastFill, before.used) / 1024));
          w.lastFill = { kib, usedBefore: before.used };
          await vm.fill(kib);
          w.every = 500; // the next look, which trims, in a second
          this.log.debug(`vm: ${id.slice(0, 12)}: ${(before.used / MiB).toFixed(1)} MiB of TCG's code cache in use since its start: the guest runs ${kib} KiB of filler code to flush it`);
        }
        return;
      }
      const file = await cacheFile(pid);
      if (!file) return void (w.never = true);
      // Nothing dead above the fill point: a start that did not overflow the cache (it holds the start's code, live
      // until a flush). As after a trim, the filler takes over at the next look.
      if (!deadTail(before.used, file.size)) return settled(w, before.flushes);
      await qmp.execute('stop');
      try {
        const now = await infoJit();
        const tail = now && deadTail(now.used, file.size);
        if (!now || !tail) return;
        await run('/usr/bin/fallocate', ['--punch-hole', '--offset', String(tail.offset), '--length', String(tail.length), file.path]);
        settled(w, now.flushes);
        this.log.debug(`vm: ${id.slice(0, 12)}: ${(tail.length / MiB).toFixed(1)} MiB of TCG's code cache given back (${(now.used / MiB).toFixed(1)} MiB in use)`);
      } finally {
        await qmp.execute('cont');
      }
    } catch (e) {
      // The VM went away (or its monitor did) between looks: the next look finds out, or delete() forgets it.
      this.log.debug(`vm: ${id.slice(0, 12)}: TCG cache not trimmed (${oneLine(e)})`);
    }
  }
}
