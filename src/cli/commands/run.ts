// `silo create` and `silo run`: create the system; run also attaches, starts, streams and waits.

import { readFileSync } from 'node:fs';
import { call, enc, upgradeWith } from '../client.js';
import { asStartFailure, CliError, DaemonError } from '../errors.js';
import { buildCreateRequest, normalizeSignal, volumeNames, type CreateFlags } from '../flags.js';
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

/**
 * The create request. Named volumes are made (or found) first, for their paths: after the flags were checked with
 * stand-in paths, so a bad flag makes no volume.
 */
async function createRequest(image: string, command: string[], f: RunFlags) {
  const ctx = { env: process.env, envFiles: readEnvFiles(f.envFile), consoleSize: f.tty ? terminalSize() : undefined };
  const names = volumeNames(f.volume ?? []);
  if (names.length === 0) return buildCreateRequest(image, command, f, ctx);
  buildCreateRequest(image, command, f, { ...ctx, volumes: Object.fromEntries(names.map((n) => [n, '/'])) });
  const volumes: Record<string, string> = {};
  for (const n of names) volumes[n] = (await call<{ Mountpoint: string }>('POST', '/v1/volumes', { Name: n })).Mountpoint;
  return buildCreateRequest(image, command, f, { ...ctx, volumes });
}

/** docker's flow: the image is not here → pull it (progress on stderr), then ask again. */
async function pullingIfMissing<T>(image: string, ask: () => Promise<T>): Promise<T> {
  try {
    return await ask();
  } catch (e) {
    if (!(e instanceof DaemonError && e.status === 404 && /no such image/i.test(e.message))) throw e;
    process.stderr.write(`Unable to find image '${image}' locally\n`);
    await (await import('./registry.js')).pullImage(image, { out: process.stderr });
    return ask();
  }
}

async function createSystem(image: string, command: string[], f: RunFlags, classify: boolean): Promise<string> {
  const req = await createRequest(image, command, f);
  try {
    const r = await pullingIfMissing(image, () => call<{ Id: string; Warnings?: string[] }>('POST', '/v1/systems', req));
    for (const w of r.Warnings ?? []) process.stderr.write(`WARNING: ${w}\n`);
    return r.Id;
  } catch (e) {
    throw classify ? asStartFailure(e) : e;
  }
}

export async function create(image: string, command: string[], f: RunFlags): Promise<number> {
  process.stdout.write(`${await createSystem(image, command, f, false)}\n`);
  return 0;
}

export async function run(image: string, command: string[], f: RunFlags): Promise<number> {
  if (f.detach) {
    const id = await createSystem(image, command, f, true);
    try {
      await call('POST', `/v1/systems/${enc(id)}/start`);
    } catch (e) {
      if (f.rm) await call('DELETE', `/v1/systems/${enc(id)}?force=1`).catch(() => {});
      throw asStartFailure(e);
    }
    process.stdout.write(`${id}\n`);
    return 0;
  }
  // One request creates, attaches, starts and waits (api/native/run.ts); with --rm its exit code follows the removal.
  const req = await createRequest(image, command, f);
  let up: Awaited<ReturnType<typeof upgradeWith>>;
  try {
    up = await pullingIfMissing(image, () => upgradeWith('POST', `/v1/systems/run${f.interactive ? '?stdin=1' : ''}`, req));
  } catch (e) {
    throw asStartFailure(e);
  }
  const base = `/v1/systems/${enc(String(up.headers['x-silo-system']))}`;
  const sigProxy = f.sigProxy === undefined || !/^(false|0|no)$/i.test(f.sigProxy);
  let exit: number | undefined;
  await runSession({
    socket: up.socket,
    tty: !!f.tty,
    stdin: !!f.interactive,
    resize: (h, w) => call('POST', `${base}/resize?h=${h}&w=${w}`),
    signal: sigProxy ? (s) => call('POST', `${base}/signal`, { Signal: normalizeSignal(s) }) : undefined,
    control: (d) => {
      exit = (JSON.parse(d.toString('utf8')) as { ExitCode: number }).ExitCode;
    },
  });
  if (exit === undefined) throw new CliError('the daemon ended the run before its exit code');
  return exit;
}
