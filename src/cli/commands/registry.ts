// pull, push, login, logout: the daemon does the registry work; the CLI draws its progress lines.

import type { IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { stream, withQuery, call } from '../client.js';
import { CliError, DaemonError } from '../errors.js';
import { progressRenderer, type ProgressLine } from '../progress.js';
import { displayName } from '../format.js';

/** Read the daemon's NDJSON lines; the last carries the result or an error. */
async function follow<T>(res: IncomingMessage, out: NodeJS.WriteStream, quiet: boolean): Promise<T> {
  const r = quiet ? undefined : await progressRenderer(out);
  let result: T | undefined;
  let error: string | undefined;
  try {
    for await (const l of createInterface({ input: res, crlfDelay: Infinity })) {
      if (!l.trim()) continue;
      const m = JSON.parse(l) as ProgressLine & { result?: T; error?: string };
      if (m.error !== undefined) error = m.error;
      else if (m.result !== undefined) result = m.result;
      else r?.line(m);
    }
  } finally {
    r?.done();
  }
  if (error !== undefined) throw new DaemonError(error, 500);
  if (result === undefined) throw new CliError('the daemon ended the stream without a result');
  return result;
}

export async function pullImage(ref: string, o: { platform?: string; quiet?: boolean; allTags?: boolean; out?: NodeJS.WriteStream } = {}): Promise<unknown> {
  const res = await stream('POST', withQuery('/v1/images/pull', { ref, platform: o.platform, allTags: o.allTags ? 1 : undefined }));
  return follow<unknown>(res, o.out ?? process.stdout, !!o.quiet);
}

export async function pull(ref: string, o: { platform?: string; quiet?: boolean; allTags?: boolean }): Promise<number> {
  await pullImage(ref, o);
  if (o.quiet) process.stdout.write(`${ref}\n`);
  return 0;
}

export async function push(ref: string, o: { quiet?: boolean; allTags?: boolean }): Promise<number> {
  const res = await stream('POST', withQuery('/v1/images/push', { ref, allTags: o.allTags ? 1 : undefined }));
  await follow<unknown>(res, process.stdout, !!o.quiet);
  if (o.quiet) process.stdout.write(`${ref}\n`);
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function login(server: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean }): Promise<number> {
  if (o.password !== undefined && o.passwordStdin) throw new CliError('--password and --password-stdin are mutually exclusive');
  if (!o.username) throw new CliError('a username is required: silo login -u USER (--password-stdin | -p PASSWORD) [SERVER]');
  const password = o.passwordStdin ? await readStdin() : o.password;
  if (password === undefined || password === '') throw new CliError('a password is required: --password-stdin or -p');
  if (o.password !== undefined) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  const r = await call<{ Status: string }>('POST', '/v1/auth', { Server: server, Username: o.username, Password: password });
  process.stdout.write(`${r.Status}\n`);
  return 0;
}

export async function logout(server: string | undefined): Promise<number> {
  const r = await call<{ Removed: boolean }>('DELETE', withQuery('/v1/auth', { server }));
  const name = server ?? 'docker.io';
  process.stdout.write(r.Removed ? `Removing login credentials for ${name}\n` : `Not logged in to ${name}\n`);
  return 0;
}

/** silo save: the archive to -o FILE, or to stdout unless that is a terminal (as docker refuses). */
export async function save(names: string[], o: { output?: string; format?: string }): Promise<number> {
  if (!o.output && process.stdout.isTTY) throw new CliError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const res = await stream('GET', withQuery('/v1/images/save', { name: names, format: o.format }));
  const { createWriteStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  const { rename, rm } = await import('node:fs/promises');
  if (!o.output) {
    await pipeline(res, process.stdout);
    return 0;
  }
  // Written beside the target and renamed: an interrupted save leaves no half archive under the name.
  const tmp = `${o.output}.silo-save-${process.pid}`;
  try {
    await pipeline(res, createWriteStream(tmp, { mode: 0o644 }));
    await rename(tmp, o.output);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return 0;
}

export async function load(o: { input?: string; quiet?: boolean }): Promise<number> {
  const { createReadStream } = await import('node:fs');
  if (!o.input && process.stdin.isTTY) throw new CliError('requested load from stdin, but stdin is empty');
  const body = o.input ? createReadStream(o.input) : process.stdin;
  const r = await call<{ Images: { id: string; names: string[] }[]; Names: string[] }>('POST', '/v1/images/load', undefined, { body, headers: { 'Content-Type': 'application/x-tar' } });
  if (!o.quiet) {
    for (const n of r.Names) process.stdout.write(`Loaded image: ${displayName(n)}\n`);
    for (const i of r.Images) if (!i.names.length) process.stdout.write(`Loaded image ID: ${i.id}\n`);
  }
  return 0;
}
