// `docker stats` figures from the compute service's Statistics, in docker's cgroup-v1 JSON. docker's CLI computes
// CPU% from the delta against precpu_stats, which the daemon must fill even for stream=0: the sampler keeps the
// previous sample per container and takes a fresh pair when it has none recent.

import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import type { ComputeSystemRecord, Statistics } from '../../compute/types.js';
import type { Services } from '../../host/services.js';

interface Sample {
  at: Date;
  stats: Statistics;
  systemNs: number;
  net: Record<string, NetDev>;
}

interface NetDev {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

const NS_PER_TICK = 1e9 / 100;

/** Host CPU time in ns: the sum of /proc/stat's aggregate cpu line (what docker calls system_cpu_usage). */
async function systemNs(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith('cpu '))!;
  return line.trim().split(/\s+/).slice(1, 8).reduce((a, b) => a + Number(b), 0) * NS_PER_TICK;
}

/** docker's per-interface counters from the network service's endpoint statistics (the compute service's sample). */
function netDev(st: Statistics): Record<string, NetDev> {
  const out: Record<string, NetDev> = {};
  for (const [name, e] of Object.entries(st.network ?? {})) {
    out[name] = {
      rx_bytes: e.BytesReceived, rx_packets: e.PacketsReceived, rx_errors: e.ErrorsIncoming, rx_dropped: e.DroppedPacketsIncoming,
      tx_bytes: e.BytesSent, tx_packets: e.PacketsSent, tx_errors: e.ErrorsOutgoing, tx_dropped: e.DroppedPacketsOutgoing,
    };
  }
  return out;
}

export class StatsSampler {
  private readonly last = new Map<string, Sample>();

  constructor(private readonly svc: Services) {}

  async sample(r: ComputeSystemRecord): Promise<Sample | undefined> {
    const p = await this.svc.compute.properties(r.Id, ['Statistics']).catch(() => undefined);
    if (!p?.Statistics) return undefined;
    const s: Sample = { at: new Date(), stats: p.Statistics, systemNs: await systemNs(), net: netDev(p.Statistics) };
    return s;
  }

  /** A sample and the one before it (taken now, 250 ms apart, when there is none from the last 10 s). */
  async pair(r: ComputeSystemRecord): Promise<{ cur?: Sample; prev?: Sample }> {
    let prev = this.last.get(r.Id);
    if (!prev || Date.now() - prev.at.getTime() > 10_000) {
      prev = await this.sample(r);
      await new Promise((res) => setTimeout(res, 250));
    }
    const cur = await this.sample(r);
    if (cur) this.last.set(r.Id, cur);
    else this.last.delete(r.Id);
    return { cur, prev };
  }

  forget(id: string): void {
    this.last.delete(id);
  }
}

function cpuJson(s: Sample | undefined) {
  const n = cpus().length;
  if (!s) return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 0, online_cpus: n, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
  const c = s.stats.cpu;
  return {
    cpu_usage: { total_usage: c.totalNs, usage_in_kernelmode: c.kernelNs, usage_in_usermode: c.userNs },
    system_cpu_usage: s.systemNs,
    online_cpus: n,
    throttling_data: { periods: 0, throttled_periods: c.throttledPeriods, throttled_time: c.throttledNs },
  };
}

export function statsJson(r: ComputeSystemRecord, cur: Sample | undefined, prev: Sample | undefined): Record<string, unknown> {
  const zero = '0001-01-01T00:00:00Z';
  const m = cur?.stats.memory;
  return {
    read: cur?.at.toISOString() ?? zero,
    preread: prev?.at.toISOString() ?? zero,
    pids_stats: cur ? { current: cur.stats.pids.current, ...(cur.stats.pids.limit > 0 ? { limit: cur.stats.pids.limit } : {}) } : {},
    blkio_stats: {
      io_service_bytes_recursive: cur
        ? [
            { major: 0, minor: 0, op: 'read', value: cur.stats.io.readBytes },
            { major: 0, minor: 0, op: 'write', value: cur.stats.io.writeBytes },
          ]
        : null,
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuJson(cur),
    precpu_stats: cpuJson(prev),
    memory_stats: m
      ? { usage: m.usageBytes, max_usage: m.peakBytes, stats: { total_inactive_file: 0 }, failcnt: m.failCount, limit: Math.min(m.limitBytes || Infinity, totalmem()) }
      : {},
    name: `/${r.Name}`,
    id: r.Id,
    networks: cur ? cur.net : {},
  };
}
