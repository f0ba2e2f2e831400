// `silo create` and `silo run`: create the system; run also attaches, starts, streams and waits.

import { readFileSync } from 'node:fs';
import { call, enc, upgrade } from '../client.js';
import { asStartFailure, CliError, DaemonError } from '../errors.js';
import { buildCreateRequest, normalizeSignal, type CreateFlags } from '../flags.js';
import { terminalSize } from '../stream.js';
import { runSession } from './session.js';

export interface RunFlags extends CreateFlags {
  detach?: boolean;
  sigProxy?: string;
}

function readEnvFiles(files: string[] = []): string[] {
  return files.map((f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new CliError(`open ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
  });
}

async function createSystem(image: string, command: string[], f: RunFlags, classify: boolean): Promise<string> {
  const req = buildCreateRequest(image, command, f, {
    env: process.env,
    envFiles: readEnvFiles(f.envFile),
    consoleSize: f.tty ? terminalSize() : undefined,
  });
  try {
    let r: { Id: string; Warnings?: string[] };
    try {
      r = await call<{ Id: string; Warnings?: string[] }>('POST', '/v1/systems', req);
    } catch (e) {
      // docker's flow: the image is not here → pull it (progress on stderr), then create again.
      if (!(e instanceof DaemonError && e.status === 404 && /no such image/i.test(e.message))) throw e;
      process.stderr.write(`Unable to find image '${image}' locally\n`);
      await (await import('./registry.js')).pullImage(image, { out: process.stderr });
      r = await call<{ Id: string; Warnings?: string[] }>('POST', '/v1/systems', req);
    }
    for (const w of r.Warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
    return r.Id;
  } catch (e) {
    throw classify ? asStartFailure(e) : e;
  }
}

/** Like docker's --rm, return only once the daemon has removed the system (bounded: it may be slow or failing). */
async function removed(base: string): Promise<void> {
  for (let delay = 5, spent = 0; spent < 5000; spent += delay, delay = Math.min(delay * 2, 100)) {
    try {
      await call('GET', base);
    } catch {
      return; // 404 (or the daemon went away)
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

export async function create(image: string, command: string[], f: RunFlags): Promise<number> {
  process.stdout.write(`${await createSystem(image, command, f, false)}\n`);
  return 0;
}

export async function run(image: string, command: string[], f: RunFlags): Promise<number> {
  const id = await createSystem(image, command, f, true);
  const base = `/v1/systems/${enc(id)}`;
  const start = async () => {
    try {
      await call('POST', `${base}/start`);
    } catch (e) {
      if (f.rm) await call('DELETE', `${base}?force=1`).catch(() => {});
      throw asStartFailure(e);
    }
  };

  if (f.detach) {
    await start();
    process.stdout.write(`${id}\n`);
    return 0;
  }

  const socket = await upgrade('POST', `${base}/attach${f.interactive ? '?stdin=1' : ''}`);
  // Ask for the exit code before starting so an AutoRemove'd system cannot vanish first; ask again if that early
  // request settled before the start (a daemon that only waits on running systems) or failed.
  let started = false;
  const waitOnce = (q = '') =>
    call<{ ExitCode: number }>('POST', `${base}/wait${q}`).then(
      (r) => ({ r, e: undefined as unknown, afterStart: started }),
      (e: unknown) => ({ r: undefined, e, afterStart: started }),
    );
  const early = waitOnce('?condition=next-exit');
  const sigProxy = f.sigProxy === undefined || !/^(false|0|no)$/i.test(f.sigProxy);
  await runSession({
    socket,
    tty: !!f.tty,
    stdin: !!f.interactive,
    start: async () => {
      await start();
      started = true;
    },
    resize: (h, w) => call('POST', `${base}/resize?h=${h}&w=${w}`),
    signal: sigProxy ? (s) => call('POST', `${base}/signal`, { Signal: normalizeSignal(s) }) : undefined,
  });
  let res = await early;
  if (!res.afterStart || res.e) res = await waitOnce();
  if (res.e) throw res.e;
  if (f.rm) await removed(base);
  return res.r!.ExitCode;
}
