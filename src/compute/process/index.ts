// Entry point of the `process` isolation backend (runc under conmon).

import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sweepTempFiles } from '../../common/atomic.js';
import { invalid } from '../../common/errors.js';
import type { IsolationBackend } from '../backend.js';
import { ProcessBackend } from './backend.js';
import { parseNofileHard } from '../resolve.js';

export { longestSocketPath, MAX_SOCKET_PATH, ProcessBackend } from './backend.js';

export async function openProcessIsolation(opts: {
  stateDir: string;
  runDir: string;
  cgroupParent: string;
  runc?: string;
  conmon?: string;
  /** Rotation of the backend's own log files unless a create says: bytes (-1 none) and files kept. */
  logMaxSize?: number;
  logMaxFiles?: number;
}): Promise<IsolationBackend> {
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(opts.cgroupParent.replace(/^\/+|\/+$/g, ''))) {
    throw invalid(`invalid cgroup parent: ${opts.cgroupParent}`);
  }
  for (const d of [opts.stateDir, opts.runDir, join(opts.runDir, 'runc'), join(opts.runDir, 'b'), join(opts.runDir, 'x')]) {
    await mkdir(d, { recursive: true, mode: 0o700 });
  }
  // Interrupted atomic writes of log.json, config.json and process.json, in each system's and exec's own directory.
  for (const d of [opts.stateDir, join(opts.runDir, 'b'), join(opts.runDir, 'x')]) {
    for (const e of await readdir(d, { withFileTypes: true })) if (e.isDirectory()) await sweepTempFiles(join(d, e.name));
  }
  // RLIMIT_NOFILE may not exceed the daemon's own hard limit (no CAP_SYS_RESOURCE on some hosts).
  const nofileHard = parseNofileHard(await readFile('/proc/self/limits', 'utf8').catch(() => ''));
  const backend = new ProcessBackend({
    stateDir: opts.stateDir,
    runDir: opts.runDir,
    cgroupParent: opts.cgroupParent.replace(/^\/+|\/+$/g, ''),
    runc: opts.runc ?? '/usr/sbin/runc',
    conmon: opts.conmon ?? '/usr/bin/conmon',
    nofileHard,
    logMaxSize: opts.logMaxSize ?? 20 * 1024 * 1024,
    logMaxFiles: opts.logMaxFiles ?? 5,
  });
  await backend.roots.init();
  await backend.sweepExecs();
  return backend;
}
