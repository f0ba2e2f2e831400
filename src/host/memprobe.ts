// A debugging aid for tests and benchmarks, off unless the daemon starts with SILO_DEBUG_MEMORY=1: on SIGUSR2 the
// daemon runs a full garbage collection and writes its memory figures to <runDir>/memory.json (atomically), so a
// load test can tell live objects that pile up from garbage not yet collected, which RSS alone cannot. No API route:
// whoever sends the signal can read the run dir anyway.

import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getHeapCodeStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryFigures {
  /** Bumped on every probe, so a reader can tell a fresh answer from the last one. */
  seq: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  mallocedMemory: number;
  /** Of heapUsed, compiled code with its metadata: bytecode, and optimised code that grows as more functions warm up. */
  code: number;
}

export function installMemoryProbe(runDir: string): void {
  // gc() is only handed to contexts made after --expose-gc is set; this one exists to fetch it.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let seq = 0;
  process.on('SIGUSR2', () => {
    gc();
    const m = process.memoryUsage();
    const c = getHeapCodeStatistics();
    const f: MemoryFigures = {
      seq: ++seq,
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      mallocedMemory: getHeapStatistics().malloced_memory,
      code: c.code_and_metadata_size + c.bytecode_and_metadata_size,
    };
    const path = join(runDir, 'memory.json');
    void writeFile(`${path}.tmp`, JSON.stringify(f) + '\n')
      .then(() => rename(`${path}.tmp`, path))
      .catch(() => {});
  });
}
