// Pure translation of a compute system document plus its image config into what the isolation backend runs.
// Docker's rules: an overridden entrypoint drops the image's Cmd; env entries override the image's by key. Also the
// process rules every backend applies (env defaults, cwd check, the nofile limit).

import { cpus } from 'node:os';
import { posix } from 'node:path';
import { invalid } from '../common/errors.js';
import type { ImageConfig } from '../storage/types.js';
import type { ProcessParams, Resources } from './backend.js';
import type { ComputeSystemDocument, ComputeSystemRecord } from './types.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function resolveInit(doc: ComputeSystemDocument, image: ImageConfig): ComputeSystemRecord['Init'] {
  const p = doc.Process;
  const entrypoint = p.Entrypoint !== undefined ? p.Entrypoint : (image.Entrypoint ?? []);
  let cmd: string[];
  if (p.CommandArgs && p.CommandArgs.length > 0) cmd = p.CommandArgs;
  else if (p.Entrypoint !== undefined) cmd = [];
  else cmd = image.Cmd ?? [];
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw invalid('no command specified');
  const cwd = p.WorkingDirectory || image.WorkingDir || '/';
  checkCwd(cwd); // at create, as dockerd refuses it (again at each start: an exec's cwd, and where the path leads)
  return {
    Args: args,
    Env: createEnv(image.Env ?? [], p.Environment ?? {}, p.UnsetEnvironment),
    Cwd: cwd,
    User: runAs(doc) ?? p.User ?? image.User ?? '',
    Tty: p.EmulateConsole ?? false,
    Stdin: p.CreateStdInPipe ?? false,
    ...(p.StdinOnce === false ? { StdinOnce: false } : {}),
  };
}

/** A security context's numeric user and group win over the process' and the image's user. */
function runAs(doc: ComputeSystemDocument): string | undefined {
  const s = doc.Container.Security;
  if (s?.RunAsUser === undefined) return undefined;
  return s.RunAsGroup === undefined ? String(s.RunAsUser) : `${s.RunAsUser}:${s.RunAsGroup}`;
}

/** A new container's environment as dockerd merges it: the caller's variables first, then the image's it does not set. */
export function createEnv(image: string[], own: Record<string, string>, unset: string[] = []): string[] {
  const env = mergeEnv(image, own, unset);
  const key = (e: string) => e.split('=', 1)[0];
  const mine = Object.keys(own);
  return [...mine.map((k) => env.find((e) => key(e) === k)!), ...env.filter((e) => !mine.includes(key(e)))];
}

/** `base` with `over` replacing its values where it has them and appended where not (an exec's -e, as dockerd does). */
export function mergeEnv(base: string[], over: Record<string, string>, unset: string[] = []): string[] {
  const m = new Map<string, string>();
  for (const e of base) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  for (const k of unset) m.delete(k);
  for (const [k, v] of Object.entries(over)) {
    if (!k || k.includes('=')) throw invalid(`invalid environment variable name: ${JSON.stringify(k)}`);
    m.set(k, v);
  }
  if (!m.has('PATH')) m.set('PATH', DEFAULT_PATH.slice(5));
  return [...m].map(([k, v]) => `${k}=${v}`);
}

/** Memory, processor and pids settings of a document as cgroup resources; rejects HCS's mutually exclusive trio. */
let cpuCount: number | undefined;
/** The host's CPUs, counted once: os.cpus() reads and parses /proc/cpuinfo, /proc/stat and sysfs at each call. */
export function hostCpuCount(): number {
  return (cpuCount ??= cpus().length);
}

export function resourcesOf(c: Pick<ComputeSystemDocument['Container'], 'Memory' | 'Processor' | 'Pids'>, hostCpus = hostCpuCount()): Resources {
  const r: Resources = {};
  if (c.Memory?.Swappiness !== undefined) r.swappiness = c.Memory.Swappiness;
  if (c.Processor?.CpusetCpus) r.cpusetCpus = c.Processor.CpusetCpus;
  if (c.Memory?.SizeInMB !== undefined) {
    if (!(c.Memory.SizeInMB >= 6)) throw invalid('Memory.SizeInMB must be at least 6 (the minimum memory limit is 6MB)');
    r.memoryBytes = Math.round(c.Memory.SizeInMB * 1024 * 1024);
  }
  if (c.Memory?.ReservationInBytes !== undefined) {
    if (c.Memory.ReservationInBytes < 6 * 1024 * 1024) throw invalid('Minimum memory reservation allowed is 6MB');
    if (r.memoryBytes !== undefined && r.memoryBytes < c.Memory.ReservationInBytes) throw invalid('Minimum memory limit can not be less than memory reservation limit, see usage');
    r.memoryReservationBytes = c.Memory.ReservationInBytes;
  }
  const proc = c.Processor ?? {};
  const set = (['Count', 'Maximum', 'Weight'] as const).filter((k) => proc[k] !== undefined);
  if (set.length > 1) throw invalid(`Processor.${set.join(', Processor.')} are mutually exclusive`);
  if (proc.Count !== undefined) {
    if (!(proc.Count > 0) || proc.Count > hostCpus) throw invalid(`Processor.Count must be in (0, ${hostCpus}], the host's CPUs`);
    r.cpus = proc.Count;
  }
  if (proc.Maximum !== undefined) {
    if (!(proc.Maximum >= 1 && proc.Maximum <= 10000)) throw invalid('Processor.Maximum must be in [1, 10000]');
    r.cpus = (proc.Maximum / 10000) * hostCpus;
  }
  if (proc.Shares !== undefined) {
    if (proc.Weight !== undefined) throw invalid('Processor.Weight and Processor.Shares are mutually exclusive');
    r.cpuShares = proc.Shares;
  }
  if (proc.Weight !== undefined) {
    if (!(proc.Weight >= 1 && proc.Weight <= 10000)) throw invalid('Processor.Weight must be in [1, 10000]');
    r.cpuWeight = proc.Weight;
  }
  if (c.Pids?.Limit !== undefined) {
    if (!Number.isInteger(c.Pids.Limit) || c.Pids.Limit < 1) throw invalid('Pids.Limit must be a positive integer');
    r.pidsLimit = c.Pids.Limit;
  }
  return r;
}

const adjectives = ['brave', 'calm', 'eager', 'fond', 'keen', 'lucid', 'merry', 'quiet', 'sharp', 'stoic', 'swift', 'tender', 'vivid', 'witty', 'zen'];
const nouns = ['archimedes', 'curie', 'darwin', 'euler', 'faraday', 'gauss', 'hopper', 'kepler', 'lovelace', 'noether', 'pascal', 'turing', 'volta', 'wright', 'yalow'];

export function randomName(taken: (n: string) => boolean): string {
  for (let i = 0; ; i++) {
    const a = adjectives[Math.floor(Math.random() * adjectives.length)];
    const n = nouns[Math.floor(Math.random() * nouns.length)];
    const name = i < 20 ? `${a}_${n}` : `${a}_${n}${i}`;
    if (!taken(name)) return name;
  }
}

export const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

// Rules every backend applies to a process it starts, whatever runs it (runc on the host, the agent in a VM).

/** Reject working directories that are relative or inside /proc (CVE-2024-21626): not only /proc/<pid>/fd but every
 *  magic link under it (task/<tid>/fd, cwd, root, map_files) can lead out of the container while runc sets it up,
 *  and no real program needs to start there. */
export function checkCwd(cwd: string): string {
  const c = cwd || '/';
  if (!posix.isAbsolute(c)) throw invalid(`the working directory '${c}' is invalid, it needs to be an absolute path`); // dockerd's words
  const n = posix.normalize(c);
  if (/^\/proc\/./.test(n)) throw invalid(`working directory not allowed: ${c}`);
  return n;
}

/**
 * The process' environment as dockerd builds it: PATH, HOSTNAME (and TERM with a tty) first, each replaced where the
 * container's own environment sets it and followed by the rest of that; HOME last, when nothing set it.
 */
export function buildEnv(p: ProcessParams, hostname: string, home: string): string[] {
  const env = [DEFAULT_PATH, ...(hostname ? [`HOSTNAME=${hostname}`] : []), ...(p.tty ? ['TERM=xterm'] : [])];
  const key = (e: string) => e.split('=', 1)[0];
  for (const e of p.env) {
    const i = env.findIndex((x) => key(x) === key(e));
    if (i >= 0) env[i] = e;
    else env.push(e);
  }
  if (!env.some((e) => key(e) === 'HOME')) env.push(`HOME=${home}`);
  return env;
}

/** RLIMIT_NOFILE is never raised past this, whatever the daemon's own hard limit. */
export const NOFILE_CAP = 1048576;

/** The daemon's RLIMIT_NOFILE hard limit, parsed from /proc/self/limits text (node has no getrlimit). */
export function parseNofileHard(limitsText: string): number {
  const line = limitsText.split('\n').find((l) => l.startsWith('Max open files'));
  const f = line?.trim().split(/\s{2,}/);
  const hard = f?.[2];
  if (!hard) return 1024;
  return hard === 'unlimited' ? NOFILE_CAP : Number(hard) || 1024;
}
