// The stress workload shared by bench/stress.ts (long) and test/e2e/reliability-stress.test.ts (short): C concurrent
// clients, each doing N full lifecycles through the native API — create with a published port, start, a request
// through that port, exec, stop, remove — while the daemon's RSS is sampled.

import http from 'node:http';
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
  onProgress?: (done: number, total: number) => void;
}

export interface StressResult {
  lifecycles: number;
  errors: string[];
  /** Per-lifecycle wall time, ms. */
  durations: number[];
  /** [ms since start, RSS bytes]. */
  rss: [number, number][];
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
      o.onProgress?.(durations.length, total);
    }
  };
  try {
    await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  } finally {
    clearInterval(sampler);
  }
  rss.push([Math.round(performance.now() - t0), await rssOf(o.daemonPid)]);
  return { lifecycles: total, errors, durations, rss, wallMs: performance.now() - t0 };
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
