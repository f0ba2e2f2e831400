// Child processes for the bench: every command is timed with the monotonic clock, and a failure carries the command's
// own last words so a row that cannot run says why ("n/a (…)") instead of crashing the whole run.

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface Out {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ExecOpts {
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  /** Resolve with a non-zero code instead of throwing. */
  allowFail?: boolean;
  /** Do not keep stdout (large or uninteresting). */
  discardStdout?: boolean;
}

export class CommandError extends Error {
  constructor(readonly cmd: string, readonly out: Out) {
    super(`${cmd} exited ${out.code}: ${lastLine(out.stderr || out.stdout)}`);
  }
}

export function lastLine(s: string): string {
  const lines = s.trim().split('\n').filter(Boolean);
  return (lines[lines.length - 1] ?? '').slice(0, 200);
}

export function exec(cmd: string, args: string[], o: ExecOpts = {}): Promise<Out> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { env: o.env ?? process.env, stdio: ['pipe', o.discardStdout ? 'ignore' : 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    p.stdout?.on('data', (b) => (stdout += b));
    p.stderr!.on('data', (b) => (stderr += b));
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, sig) => {
      clearTimeout(timer);
      const out = { code: code ?? (sig ? 128 : 1), stdout, stderr, ms: performance.now() - t0 };
      if (out.code !== 0 && !o.allowFail) reject(new CommandError([cmd, ...args].join(' ').slice(0, 160), out));
      else resolve(out);
    });
    p.stdin!.on('error', () => {}); // a command that does not read stdin may close it first
    p.stdin!.end(o.input ?? '');
  });
}

/** Like exec but never throws; for cleanup and probes. */
export function tryExec(cmd: string, args: string[], o: ExecOpts = {}): Promise<Out> {
  return exec(cmd, args, { ...o, allowFail: true }).catch((e: Error) => ({ code: 127, stdout: '', stderr: e.message, ms: 0 }));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function errText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 200);
}
