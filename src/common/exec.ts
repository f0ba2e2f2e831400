import { spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { SiloError } from './errors.js';
import { spawner } from './spawner.js';

/** Where host tools are looked for: root's standard PATH, not the caller's (which may hold shims or user tools). */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** A tool's environment unless the caller gives one: no locale (messages stay the C ones the code parses). */
export const TOOL_ENV: NodeJS.ProcessEnv = Object.freeze({ PATH: SYSTEM_PATH });

const found = new Map<string, string>();

/**
 * The absolute path of a host tool, looked up once per daemon: a bare name given to spawn makes the child try every
 * PATH entry with execve (≈60 failed execs per container before), each after forking the whole daemon.
 */
export function toolPath(name: string): string {
  if (name.includes('/')) return name;
  let p = found.get(name);
  if (p === undefined) {
    p = name; // not found: let spawn report ENOENT as before
    for (const dir of SYSTEM_PATH.split(':')) {
      try {
        accessSync(`${dir}/${name}`, constants.X_OK);
        p = `${dir}/${name}`;
        break;
      } catch {
        /* next */
      }
    }
    if (p !== name) found.set(name, p);
  }
  return p;
}

/**
 * Tools the spawner does itself for the forms Silo uses (a system call in a fork of it, not mount(8)'s ~4 ms of CPU
 * to start); any other form, or no spawner, runs the tool.
 */
const BUILTINS = new Set(['mount', 'umount']);
const NOT_BUILTIN = 125;

export interface RunOptions {
  input?: string | Buffer;
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Run a host tool (runc, losetup, mount, mkfs.ext4...) to completion. Throws a SiloError naming the tool and its
 * stderr's first line unless `allowFail` is set.
 */
export function run(
  file: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const sp = spawner();
  if (sp && BUILTINS.has(file) && opts.input === undefined) {
    return sp.run({ path: file, argv0: file, args, env: {}, cwd: opts.cwd, timeoutMs: opts.timeoutMs, builtin: true }).then(
      (s) => (s.code === NOT_BUILTIN ? runTool(spawner(), file, args, opts) : finish(file, args, { stdout: s.stdout.toString(), stderr: s.stderr.toString(), code: s.code }, s.signal, opts.allowFail)),
      () => runTool(spawner(), file, args, opts),
    );
  }
  return runTool(sp, file, args, opts);
}

function runTool(sp: ReturnType<typeof spawner>, file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  if (sp) {
    const path = toolPath(file);
    return sp.run({ path, argv0: file, args, env: opts.env ?? TOOL_ENV, cwd: opts.cwd, input: opts.input, timeoutMs: opts.timeoutMs }).then(
      (s) => finish(file, args, { stdout: s.stdout.toString(), stderr: s.stderr.toString(), code: s.code }, s.signal, opts.allowFail),
      (e: Error) => {
        throw new SiloError('Internal', 'SILO_EXEC', `${file}: ${e.message.replace(/^spawn /, `spawn ${path} `)}`, { cause: e });
      },
    );
  }
  return new Promise((resolve, reject) => {
    const so: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? TOOL_ENV, cwd: opts.cwd, argv0: file };
    const child = spawn(toolPath(file), args, so);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new SiloError('Internal', 'SILO_EXEC', `${file}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      try {
        resolve(finish(file, args, { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? 128 }, signal ?? undefined, opts.allowFail));
      } catch (e) {
        reject(e);
      }
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** The result, or the error naming the tool and its stderr's last line. */
function finish(file: string, args: readonly string[], r: RunResult, signal: NodeJS.Signals | undefined, allowFail?: boolean): RunResult {
  if (r.code !== 0 && !allowFail) {
    const why = (r.stderr.trim().split('\n').pop() || r.stdout.trim().split('\n').pop() || `signal ${signal}`).trim();
    throw new SiloError('Internal', 'SILO_EXEC', `${file} ${args[0] ?? ''}: ${why}`);
  }
  return r;
}
