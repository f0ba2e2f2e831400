// The stress workload shared by bench/stress.ts (long) and test/e2e/reliability-stress.test.ts (short): C concurrent
// clients, each doing N full lifecycles through the native API — create with a published port, start, a request
// through that port, exec, stop, remove — while the daemon's RSS is sampled (and its live heap, when it runs with
// SILO_DEBUG_MEMORY=1).

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { call, execIn, rssOf } from './native-client.js';

export interface StressOptions {
  socket: string;
  daemonPid: number;
  clients: number;
  cycles: number;
  /** Host ports portBase … portBase + clients*cycles - 1 are used, one per lifecycle, never twice. */
  portBase: number;
  /** RSS sampling period, ms. */
  sampleMs?: number;
  /** The daemon's run dir, when it runs with SILO_DEBUG_MEMORY=1: its live heap is then probed (after a full GC). */
  runDir?: string;
  /** Probe the live heap after every this many lifecycles (default: a tenth of the run), and at the start and end. */
  heapEvery?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface StressResult {
  lifecycles: number;
  errors: string[];
  /** Per-lifecycle wall time, ms. */
  durations: number[];
  /** [ms since start, RSS bytes]. */
  rss: [number, number][];
  /** The daemon's figures after a full GC, by lifecycles done, when runDir was given. */
  heap: HeapSample[];
  wallMs: number;
}

// SIGTERM ends the shell at once (`wait` is interruptible), so stop does not sit out its grace period; httpd answers
// on the published port.
const INIT = ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /etc & wait'];

/** GET through the published port until it answers (httpd needs a moment after start). */
async function throughPort(port: number): Promise<number> {
  for (let i = 0; ; i++) {
    try {
      return await new Promise<number>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/hostname', agent: false, timeout: 2000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
      });
    } catch (e) {
      if (i >= 40) throw new Error(`port ${port}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function lifecycle(s: string, name: string, port: number): Promise<void> {
  const { Id } = await call<{ Id: string }>(s, 'POST', '/v1/systems', {
    Name: name,
    Image: 'busybox',
    Document: { Process: { CommandArgs: INIT }, Container: { Networking: { PortMappings: [{ Protocol: 'tcp', InternalPort: 80, ExternalPort: port }] } } },
  });
  try {
    await call(s, 'POST', `/v1/systems/${Id}/start`);
    await throughPort(port); // any HTTP answer proves the DNAT reached httpd
    const x = await execIn(s, Id, ['echo', name]);
    if (x.exitCode !== 0 || x.stdout !== `${name}\n`) throw new Error(`exec: exit ${x.exitCode}, output ${JSON.stringify(x.stdout)}`);
    await call(s, 'POST', `/v1/systems/${Id}/shutdown`, { TimeoutSeconds: 5 });
    const w = await call<{ ExitCode: number }>(s, 'POST', `/v1/systems/${Id}/wait`);
    if (w.ExitCode !== 0) throw new Error(`exit code ${w.ExitCode} after stop`);
    await call(s, 'DELETE', `/v1/systems/${Id}`);
  } catch (e) {
    await call(s, 'DELETE', `/v1/systems/${Id}?force=1`).catch(() => {}); // count the error, not a leak too
    throw e;
  }
}

export async function runStress(o: StressOptions): Promise<StressResult> {
  const t0 = performance.now();
  const rss: [number, number][] = [[0, await rssOf(o.daemonPid)]];
  const sampler = setInterval(() => {
    rssOf(o.daemonPid).then((b) => rss.push([Math.round(performance.now() - t0), b]), () => {});
  }, o.sampleMs ?? 1000);
  const errors: string[] = [];
  const durations: number[] = [];
  const total = o.clients * o.cycles;
  const heap: HeapSample[] = [];
  const probe = async (done: number) => {
    if (o.runDir) await liveHeap(o.runDir, o.daemonPid).then((f) => heap.push({ ...f, done }), (e) => errors.push(`memory probe: ${(e as Error).message}`));
  };
  const every = Math.max(1, o.heapEvery ?? Math.round(total / 10));
  let probing = Promise.resolve();
  await probe(0);
  const client = async (c: number) => {
    for (let i = 0; i < o.cycles; i++) {
      const t = performance.now();
      const name = `stress-${c}-${i}`;
      try {
        await lifecycle(o.socket, name, o.portBase + c * o.cycles + i);
      } catch (e) {
        errors.push(`${name}: ${(e as Error).message}`);
      }
      durations.push(performance.now() - t);
      const done = durations.length;
      if (done % every === 0 && done < total) probing = probing.then(() => probe(done));
      o.onProgress?.(done, total);
    }
  };
  try {
    await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  } finally {
    clearInterval(sampler);
  }
  const wallMs = performance.now() - t0;
  rss.push([Math.round(wallMs), await rssOf(o.daemonPid)]);
  await probing;
  await probe(total);
  return { lifecycles: total, errors, durations, rss, heap, wallMs };
}

export interface HeapSample {
  /** Lifecycles done when it was taken. */
  done: number;
  /**
   * Bytes: live objects in V8's heap, of which compiled code and its metadata (it grows for a while as more functions
   * get optimised), the heap's committed size, memory outside it (buffers), the process' RSS.
   */
  heapUsed: number;
  code: number;
  heapTotal: number;
  external: number;
  rss: number;
}

/** The daemon's memory figures after a full GC: SIGUSR2 to a daemon started with SILO_DEBUG_MEMORY=1 (src/host/memprobe.ts). */
export async function liveHeap(runDir: string, pid: number): Promise<Omit<HeapSample, 'done'> & { seq: number }> {
  const path = join(runDir, 'memory.json');
  const read = async () => JSON.parse(await readFile(path, 'utf8').catch(() => '{"seq":0}'));
  const before = (await read()).seq;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const f = await read();
    if (f.seq > before) return f;
  }
  throw new Error('the daemon did not answer the memory probe (is SILO_DEBUG_MEMORY=1 set?)');
}

/** Least-squares slope of y over x. */
export function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx ? sxy / sxx : 0;
}

/** Growth of RSS from the first quarter of the samples to the last (medians, so one GC pause does not decide). */
export function rssGrowth(rss: [number, number][]): { first: number; last: number; growth: number } {
  const q = Math.max(1, Math.floor(rss.length / 4));
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const first = med(rss.slice(0, q).map((r) => r[1]));
  const last = med(rss.slice(-q).map((r) => r[1]));
  return { first, last, growth: last - first };
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}
