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

/**
 * Read one line from the terminal in raw mode: typed characters are echoed only with `echo` (a password is not),
 * backspace edits, Ctrl-C interrupts as it would, Ctrl-D ends. The terminal is in raw mode before the prompt shows.
 */
function readTerminalLine(prompt: string, echo: boolean): Promise<string> {
  const tty = process.stdin as NodeJS.ReadStream;
  return new Promise((resolve) => {
    let s = '';
    tty.setRawMode(true);
    tty.setEncoding('utf8');
    process.stdout.write(prompt);
    const finish = () => {
      tty.off('data', onData);
      tty.setRawMode(false);
      tty.pause();
      process.stdout.write('\n');
      resolve(s);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') {
          tty.setRawMode(false);
          process.stdout.write('\n');
          process.kill(process.pid, 'SIGINT');
          return;
        }
        if (ch === '\u007f' || ch === '\b') {
          if (s.length) {
            s = [...s].slice(0, -1).join('');
            if (echo) process.stdout.write('\b \b');
          }
          continue;
        }
        if (ch < ' ') continue; // other control characters are not part of a name or password
        s += ch;
        if (echo) process.stdout.write(ch);
      }
    };
    tty.on('data', onData);
    tty.resume();
  });
}

/** docker login's flags and prompts: a missing username or password is asked for on a terminal, and only there. */
export async function login(server: string | undefined, o: { username?: string; password?: string; passwordStdin?: boolean }): Promise<number> {
  if (o.password !== undefined && o.passwordStdin) throw new CliError('--password and --password-stdin are mutually exclusive');
  if (o.passwordStdin && !o.username) throw new CliError('Must provide --username with --password-stdin');
  let username = o.username?.trim();
  let password = o.passwordStdin ? await readStdin() : o.password;
  if (o.password !== undefined) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  if (!username || password === undefined) {
    // docker's words and status when it would have to prompt but cannot.
    if (!process.stdin.isTTY) throw new CliError('Cannot perform an interactive login from a non TTY device', 1);
    if (!username) username = (await readTerminalLine('Username: ', true)).trim();
    if (!username) throw new CliError('Non-null Username Required', 1);
    if (password === undefined) password = await readTerminalLine('Password: ', false);
  }
  if (password === '') throw new CliError('Password Required', 1);
  const r = await call<{ Status: string }>('POST', '/v1/auth', { Server: server, Username: username, Password: password });
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
