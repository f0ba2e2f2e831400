// Pure parsing of docker-style flags and building the create document. No I/O: callers pass file texts and env.

import type { CreateSystemRequest, ProcessParameters } from '../compute/types.js';
import type { MappedDirectory } from '../compute/process/types.js';
import { CliError } from './errors.js';

const MULT: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Docker's RAMInBytes: "64m", "1g", "512k", "1.5G", "100", "64MiB", "64mb" → bytes (binary multiples). */
export function parseSize(s: string, flag = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s?([kmgtp])?(i?b)?\s*$/i.exec(s);
  if (!m) throw new CliError(`invalid ${flag}: '${s}' (expected a number with an optional unit b, k, m, g: e.g. 64m)`);
  const unit = (m[2] ?? (m[3] ? 'b' : '')).toLowerCase();
  return Math.floor(Number(m[1]) * MULT[unit]);
}

export function parseCpus(s: string): number {
  const n = Number(s);
  if (!/^\s*\d*\.?\d+\s*$/.test(s) || !Number.isFinite(n) || n < 0) throw new CliError(`invalid argument "${s}" for "--cpus": must be a non-negative decimal`);
  return n;
}

export function parseInteger(s: string, flag: string, min = -Infinity): number {
  if (!/^-?\d+$/.test(s.trim())) throw new CliError(`invalid argument "${s}" for "${flag}": must be an integer`);
  const n = Number(s);
  if (n < min) throw new CliError(`invalid argument "${s}" for "${flag}": must be at least ${min}`);
  return n;
}

function checkKey(key: string, what: string): void {
  if (!key) throw new CliError(`invalid ${what}: empty name`);
  if (/\s/.test(key)) throw new CliError(`invalid ${what}: variable '${key}' contains whitespaces`);
}

/** `-e KEY=V` sets, `-e KEY` copies KEY from `env` (left out when unset there), like docker. */
export function parseEnvList(list: string[], env: Record<string, string | undefined>, into: Record<string, string> = {}): Record<string, string> {
  for (const e of list) {
    const i = e.indexOf('=');
    const key = i < 0 ? e : e.slice(0, i);
    checkKey(key, 'environment variable');
    if (i >= 0) into[key] = e.slice(i + 1);
    else if (env[key] !== undefined) into[key] = env[key]!;
  }
  return into;
}

/** An --env-file's text: KEY=V lines, KEY alone from `env`; blank lines and `#` comments skipped; no quote processing. */
export function parseEnvFile(text: string, env: Record<string, string | undefined>, into: Record<string, string> = {}): Record<string, string> {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s+/, ''))
    .filter((l) => l && !l.startsWith('#'));
  return parseEnvList(lines, env, into);
}

/** `-v /host:/ctr[:ro|rw]`; the host path must be absolute (there are no named volumes). */
export function parseVolume(spec: string): MappedDirectory {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1])
    throw new CliError(`invalid volume specification: '${spec}' (expected /host/path:/container/path[:ro])`);
  const [host, ctr, mode] = parts;
  if (!host.startsWith('/')) throw new CliError(`invalid volume specification: '${spec}': the host path must be absolute (named volumes are not supported)`);
  if (!ctr.startsWith('/')) throw new CliError(`invalid volume specification: '${spec}': the container path must be absolute`);
  let ro = false;
  for (const o of mode ? mode.split(',') : []) {
    if (o === 'ro') ro = true;
    else if (o === 'rw') ro = false;
    else throw new CliError(`invalid volume specification: '${spec}': unknown mode '${o}' (ro or rw)`);
  }
  const d: MappedDirectory = { HostPath: host, ContainerPath: ctr };
  if (ro) d.ReadOnly = true;
  return d;
}

/** `-l k=v` / `-l k` (empty value). */
export function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    const key = i < 0 ? l : l.slice(0, i);
    if (!key) throw new CliError(`invalid label: '${l}'`);
    out[key] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

/** Docker's signal spellings → "SIGTERM"; numbers stay numbers ("9"). */
export function normalizeSignal(s: string): string {
  const t = s.trim().toUpperCase();
  if (/^\d+$/.test(t)) return t;
  if (!/^[A-Z0-9+-]+$/.test(t)) throw new CliError(`invalid signal: ${s}`);
  return t.startsWith('SIG') ? t : `SIG${t}`;
}

/** The options `run` and `create` share (commander's camel-cased names). */
export interface CreateFlags {
  name?: string;
  env?: string[];
  envFile?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  volume?: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  storageSize?: string;
  storageOpt?: string[];
  entrypoint?: string;
  label?: string[];
  stopSignal?: string;
  stopTimeout?: string;
  tty?: boolean;
  interactive?: boolean;
  rm?: boolean;
}

export interface BuildContext {
  env: Record<string, string | undefined>;
  /** Texts of the --env-file files, in order. */
  envFiles?: string[];
  /** [rows, cols] of the local terminal, for -t. */
  consoleSize?: [number, number];
}

/** Flags → the body of `POST /v1/systems`. Throws CliError on bad input. */
export function buildCreateRequest(image: string, command: string[], f: CreateFlags, ctx: BuildContext): CreateSystemRequest {
  type Doc = NonNullable<CreateSystemRequest['Document']>;
  const container: NonNullable<Doc['Container']> = {};
  const proc: Doc['Process'] & Partial<ProcessParameters> = {};
  const doc: Doc = {};

  if (f.hostname !== undefined) container.GuestOs = { HostName: f.hostname };
  let scratch = f.storageSize !== undefined ? parseSize(f.storageSize, 'storage size') : undefined;
  for (const o of f.storageOpt ?? []) {
    const m = /^size=(.*)$/i.exec(o);
    if (!m) throw new CliError(`invalid storage option: '${o}' (only size=<size> is supported)`);
    scratch = parseSize(m[1], 'storage size');
  }
  // The create schema's Storage carries only the size (the image is the request's Image).
  if (scratch !== undefined) container.Storage = { ScratchSizeInBytes: scratch };
  const vols = (f.volume ?? []).map(parseVolume);
  if (vols.length) container.MappedDirectories = vols;
  if (f.memory !== undefined) {
    const bytes = parseSize(f.memory, 'memory');
    if (bytes > 0) container.Memory = { SizeInMB: bytes / 1024 ** 2 }; // fractional MB is exact (the daemon wants >= 6)
  }
  if (f.cpus !== undefined) {
    const n = parseCpus(f.cpus);
    if (n > 0) container.Processor = { Count: n };
  }
  if (f.pidsLimit !== undefined) {
    const n = parseInteger(f.pidsLimit, '--pids-limit');
    if (n > 0) container.Pids = { Limit: n }; // 0 and -1 mean unlimited, as in docker
  }

  if (command.length) proc.CommandArgs = command;
  if (f.entrypoint !== undefined) proc.Entrypoint = f.entrypoint === '' ? [] : [f.entrypoint];
  const environment: Record<string, string> = {};
  for (const text of ctx.envFiles ?? []) parseEnvFile(text, ctx.env, environment);
  parseEnvList(f.env ?? [], ctx.env, environment);
  if (Object.keys(environment).length) proc.Environment = environment;
  if (f.workdir !== undefined) {
    if (!f.workdir.startsWith('/')) throw new CliError(`the working directory '${f.workdir}' is invalid, it needs to be an absolute path`);
    proc.WorkingDirectory = f.workdir;
  }
  if (f.user !== undefined) proc.User = f.user;
  if (f.tty) {
    proc.EmulateConsole = true;
    if (ctx.consoleSize) proc.ConsoleSize = ctx.consoleSize;
  }
  if (f.interactive) proc.CreateStdInPipe = true;

  if (Object.keys(container).length) doc.Container = container;
  if (Object.keys(proc).length) doc.Process = proc as Doc['Process'];
  if (f.rm) doc.AutoRemove = true;
  if (f.stopSignal !== undefined) doc.StopSignal = normalizeSignal(f.stopSignal);
  if (f.stopTimeout !== undefined) doc.StopTimeoutSeconds = parseInteger(f.stopTimeout, '--stop-timeout');
  const labels = parseLabels(f.label ?? []);
  if (Object.keys(labels).length) doc.Labels = labels;

  const req: CreateSystemRequest = { Image: image };
  if (f.name !== undefined) req.Name = f.name;
  if (Object.keys(doc).length) req.Document = doc;
  return req;
}

/** Options of `exec` → ProcessParameters. */
export function buildExecProcess(
  command: string[],
  f: { env?: string[]; envFile?: string[]; workdir?: string; user?: string; tty?: boolean; interactive?: boolean },
  ctx: BuildContext,
): ProcessParameters {
  const p: ProcessParameters = { CommandArgs: command };
  const environment: Record<string, string> = {};
  for (const text of ctx.envFiles ?? []) parseEnvFile(text, ctx.env, environment);
  parseEnvList(f.env ?? [], ctx.env, environment);
  if (Object.keys(environment).length) p.Environment = environment;
  if (f.workdir !== undefined) p.WorkingDirectory = f.workdir;
  if (f.user !== undefined) p.User = f.user;
  if (f.tty) {
    p.EmulateConsole = true;
    if (ctx.consoleSize) p.ConsoleSize = ctx.consoleSize;
  }
  if (f.interactive) p.CreateStdInPipe = true;
  return p;
}
