// The daemon's side of the layer download workers (fetch-worker.ts): a few worker threads, started on the first
// download and ended after a few idle seconds (an idle daemon keeps no extra heaps), one job at a time each.
// Errors come back as plain data and are made SiloErrors again, so a failure reads as it would in the daemon.

import { Worker } from 'node:worker_threads';
import { internal, SiloError, type ErrorClass } from '../../common/errors.js';
import type { Caps } from '../input.js';
import type { LooseLayer } from '../layers.js';
import type { ClientState } from './client.js';
import type { Credentials } from './credentials.js';
import type { Endpoint } from './hosts.js';
import type { Descriptor } from './media.js';

export interface FetchJob {
  id: number;
  ep: Endpoint;
  path: string;
  creds?: Credentials;
  state: ClientState;
  timeoutMs: number;
  userAgent: string;
  desc: Descriptor;
  /** How errors name the blob: "layer 2". */
  label: string;
  /** The storage root: the blob is spooled in its content store's ingest dir, the layer in its layer store's. */
  root: string;
  caps: Caps;
  unpack: boolean;
}

export interface WireFailure {
  class?: ErrorClass;
  code?: string;
  message: string;
  errno?: string;
  syscall?: string;
}

export interface Fetched {
  tmp: string;
  digest: string;
  size: number;
  layer?: LooseLayer;
  /** The extractor refused the layer (the blob itself is sound). */
  refused?: WireFailure;
}

export type FetchReply = { id: number; progress: number } | { id: number; done: Fetched } | { id: number; error: WireFailure };

/** A failure from a worker as the error it was there. */
export function revive(f: WireFailure): Error {
  if (f.class && f.code) return new SiloError(f.class, f.code, f.message);
  return Object.assign(new Error(f.message), f.errno ? { code: f.errno } : {}, f.syscall ? { syscall: f.syscall } : {});
}

interface Job {
  resolve: (f: Fetched) => void;
  reject: (e: unknown) => void;
  progress: (n: number) => void;
}

interface Slot {
  w: Worker;
  jobs: Map<number, Job>;
}

/**
 * A worker outlives its last download by this long: a fresh isolate runs the hash, inflate and tar loops cold (the
 * daemon's V8 flags optimise late), so pulls in a row (a compose file, a CI job) reuse a warm one; an idle daemon
 * keeps no worker.
 */
const IDLE_MS = 30_000;

/**
 * Each worker runs several downloads at once (its own event loop interleaves them; inflating and file writes go on
 * in the thread pool). One worker by default: a fresh isolate runs cold code slowly until V8 has optimised it, so one
 * isolate that sees every byte pulled faster (and used less CPU) than one per download in the registry bench.
 */
export class FetchPool {
  private slots: Slot[] = [];
  private nextId = 1;
  private idle?: NodeJS.Timeout;

  constructor(private readonly workers: number) {}

  private spawn(): Slot {
    const s: Slot = { w: new Worker(new URL('./fetch-worker.js', import.meta.url)), jobs: new Map() };
    s.w.unref();
    s.w.on('message', (m: FetchReply) => {
      const j = s.jobs.get(m.id);
      if (!j) return;
      if ('progress' in m) return j.progress(m.progress);
      s.jobs.delete(m.id);
      this.release();
      if ('done' in m) j.resolve(m.done);
      else j.reject(revive(m.error));
    });
    const gone = (why: string) => {
      if (!this.slots.includes(s)) return; // ended by close()
      this.slots = this.slots.filter((x) => x !== s);
      const jobs = [...s.jobs.values()];
      s.jobs.clear();
      for (const j of jobs) j.reject(internal(`the layer download worker ${why}`));
      this.release();
    };
    s.w.on('error', (e) => gone(`failed: ${e.message}`));
    s.w.on('exit', (code) => gone(`exited (${code})`));
    this.slots.push(s);
    return s;
  }

  private release(): void {
    if (this.slots.every((s) => s.jobs.size === 0)) {
      clearTimeout(this.idle);
      this.idle = setTimeout(() => void this.close(), IDLE_MS);
      this.idle.unref();
    }
  }

  /** Start the workers now (their start-up overlaps the manifest's fetch), unless they are running already. */
  warm(): void {
    clearTimeout(this.idle);
    while (this.slots.length < this.workers) this.spawn();
    this.release();
  }

  /** Run one download in a worker; `progress` gets the bytes received so far. */
  fetch(job: Omit<FetchJob, 'id'>, progress: (n: number) => void): Promise<Fetched> {
    clearTimeout(this.idle);
    const free = this.slots.length < this.workers ? this.spawn() : this.slots.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    const id = this.nextId++;
    return new Promise<Fetched>((resolve, reject) => {
      free.jobs.set(id, { resolve, reject, progress });
      free.w.postMessage({ ...job, id } satisfies FetchJob);
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.idle);
    if (this.slots.some((s) => s.jobs.size)) return; // ended by the next idle timeout instead
    const all = this.slots;
    this.slots = [];
    await Promise.all(all.map((s) => s.w.terminate()));
  }
}
