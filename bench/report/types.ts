// The shape of bench/results/latest.json: everything BENCHMARKS.md says is derived from this document.

import type { Machine } from '../env/machine.js';
import type { ImageRow } from '../cases/imageload.js';
import type { LatencyRow } from '../cases/latency.js';
import type { MemoryRow } from '../cases/memory.js';
import type { NetworkRow } from '../cases/network.js';
import type { PolicyResult } from '../cases/policy.js';
import type { RestartResult } from '../cases/restart.js';
import type { ThroughputRow } from '../cases/throughput.js';

export interface BenchConfig {
  quick: boolean;
  n: number;
  throughputCount: number;
  throughputReps: number;
  concurrency: number;
  memoryContainers: number;
  networkRounds: number;
  networkSeconds: number;
  imageReps: number;
  policyCount: number;
  restartReps: number;
}

export interface Results {
  schema: 1;
  startedAt: string;
  finishedAt?: string;
  durationSeconds?: number;
  config: BenchConfig;
  machine: Machine;
  versions: Record<string, string>;
  image?: { method: string; layers: Record<string, string> };
  latency?: LatencyRow[];
  throughput?: ThroughputRow[];
  idleRssFresh?: Record<string, Record<string, number>>;
  idleRssAfterWork?: Record<string, Record<string, number>>;
  /** Silo's daemon's idle RSS split into anonymous and file pages (MB), fresh and after the workload. */
  siloRssSplit?: { fresh?: { anon: number; file: number }; after?: { anon: number; file: number } };
  /** RSS of a bare `node` process doing nothing: the floor under any Node.js daemon. */
  nodeBaselineRssMB?: number;
  memory?: MemoryRow[];
  network?: { withProxy?: NetworkRow[]; withoutProxy?: NetworkRow[]; na?: string };
  imageLoad?: { archiveBytes: number; layers: number; rows: ImageRow[]; na?: string };
  policy?: PolicyResult;
  restart?: RestartResult;
  /** The machine's load average (1, 5, 15 min) when the run started and ended: other users of a shared machine. */
  loadAvg?: { start: number[]; end?: number[] };
  /** What the person running it says about the machine (SILO_BENCH_NOTE), e.g. other test suites running. */
  note?: string;
  /** Problems that stopped part of the run. */
  errors: string[];
  /** Objects carrying the bench's tag that were still there after teardown (should be empty). */
  leftovers?: string[];
  firewallRestored?: string[];
}
