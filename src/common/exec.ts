import { spawn, type SpawnOptions } from 'node:child_process';
import { SiloError } from './errors.js';

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
  opts: { input?: string | Buffer; allowFail?: boolean; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const so: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd };
    const child = spawn(file, args, so);
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
      const r = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? 128 };
      if (r.code !== 0 && !opts.allowFail) {
        const why = (r.stderr.trim().split('\n').pop() || r.stdout.trim().split('\n').pop() || `signal ${signal}`).trim();
        reject(new SiloError('Internal', 'SILO_EXEC', `${file} ${args[0] ?? ''}: ${why}`));
        return;
      }
      resolve(r);
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}
