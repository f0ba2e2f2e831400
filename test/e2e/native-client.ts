// A small client of the native API over its unix socket with node:http, for the stress, fuzz and disk tests: they
// need the raw status and body of every answer (the CLI turns them into exit codes), and no process per call. Also the
// tty walk every isolation mode's test makes.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RequestOpts {
  json?: unknown;
  body?: Buffer | string;
  headers?: Record<string, string | number>;
  timeoutMs?: number;
}

/** One request; resolves with whatever the daemon answered (never rejects on a status), rejects on a socket error. */
export function request(socket: string, method: string, path: string, o: RequestOpts = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...o.headers };
    let payload: Buffer | undefined;
    if (o.json !== undefined) {
      payload = Buffer.from(JSON.stringify(o.json));
      headers['Content-Type'] ??= 'application/json';
    } else if (o.body !== undefined) payload = Buffer.from(o.body);
    if (payload) headers['Content-Length'] ??= payload.length;
    const req = http.request({ socketPath: socket, method, path, headers, agent: false });
    // Also bounds a streamed answer that never ends (events, logs -f): the request is torn down and rejected.
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path.slice(0, 100)}: no (complete) answer in ${o.timeoutMs ?? 30_000} ms`));
    }, o.timeoutMs ?? 30_000);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        let json: unknown;
        try {
          json = body.length ? JSON.parse(body.toString('utf8')) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    req.end(payload);
  });
}

/** Like request, but a status of 300 or more is an error carrying the daemon's one-line message. */
export async function call<T = any>(socket: string, method: string, path: string, json?: unknown): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const a = await request(socket, method, path, json === undefined ? {} : { json });
  if (a.status >= 300) throw new Error(`${method} ${path}: ${a.status} ${a.json?.message ?? a.body.toString('utf8').slice(0, 200)}`);
  return a.json as T;
}

/** Run a command in a running system through the upgraded exec stream; its stdout and exit code. */
export async function execIn(socket: string, id: string, args: string[]): Promise<{ stdout: string; exitCode: number }> {
  const { Id } = await call<{ Id: string }>(socket, 'POST', `/v1/systems/${id}/processes`, { CommandArgs: args });
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: 'POST', path: `/v1/processes/${Id}/start`, agent: false, headers: { Connection: 'Upgrade', Upgrade: 'tcp' } });
    req.on('error', reject);
    req.on('response', (res) => reject(new Error(`exec start: ${res.statusCode} instead of 101`)));
    req.on('upgrade', (_res, sock, head) => {
      const chunks: Buffer[] = head.length ? [head] : [];
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', reject);
      sock.on('close', () => resolve(Buffer.concat(chunks)));
      sock.end(); // no stdin
    });
    req.end();
  });
  // Frames: [stream, 0, 0, 0, size uint32 BE] + size bytes.
  let stdout = '';
  for (let i = 0; i + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(i + 4);
    if (raw[i] === 1) stdout += raw.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  // The output can end a moment before the daemon records the exit.
  for (let delay = 5, spent = 0; ; spent += delay, delay = Math.min(delay * 2, 100)) {
    const x = await call<{ Running: boolean; ExitCode?: number }>(socket, 'GET', `/v1/processes/${Id}`);
    if (!x.Running && x.ExitCode !== undefined) return { stdout, exitCode: x.ExitCode };
    if (spent > 5000) throw new Error(`exec ${Id.slice(0, 12)}: no exit code after 5 s`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Resident set size of a process, bytes (from /proc/<pid>/status). */
export async function rssOf(pid: number): Promise<number> {
  const m = (await readFile(`/proc/${pid}/status`, 'utf8')).match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) * 1024 : 0;
}

/** A hijacked stream (attach, exec start): POST with Upgrade, resolves with the socket after 101. */
export function upgrade(socket: string, path: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const req = http.request({ socketPath: socket, method: 'POST', path, headers: { Connection: 'Upgrade', Upgrade: 'tcp' } });
    req.on('upgrade', (_r, s) => res(s as Socket));
    req.on('response', (r) => rej(new Error(`no upgrade: ${r.statusCode}`)));
    req.on('error', rej);
    req.end();
  });
}

/** JSON requests through node's default agent, for tests that only need the status and the parsed body. */
export function jsonApi(socket: string) {
  return (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => // eslint-disable-line @typescript-eslint/no-explicit-any
    new Promise((res, rej) => {
      const req = http.request({ socketPath: socket, method, path, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (r) => {
        let s = '';
        r.on('data', (b) => (s += b));
        r.on('end', () => res({ status: r.statusCode!, json: s ? JSON.parse(s) : undefined }));
      });
      req.on('error', rej);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
}

/**
 * `run -it` as the CLI does it, over the hijacked attach stream: a shell with a tty answers, is resized, and its exit
 * code comes back. `document` adds to the compute system document (an isolation mode).
 */
export async function ttyShellWalk(socket: string, document: Record<string, unknown> = {}): Promise<void> {
  const api = jsonApi(socket);
  const c = await api('POST', '/v1/systems', { Image: 'busybox', Document: { ...document, Process: { CommandArgs: ['sh'], EmulateConsole: true, CreateStdInPipe: true }, AutoRemove: true } });
  assert.equal(c.status, 201, JSON.stringify(c.json));
  const id = c.json.Id;
  const sock = await upgrade(socket, `/v1/systems/${id}/attach?stdin=1`);
  let out = '';
  sock.on('data', (b: Buffer) => (out += b.toString()));
  const ended = new Promise((r) => sock.on('end', r));
  const wait = api('POST', `/v1/systems/${id}/wait?condition=next-exit`);
  assert.equal((await api('POST', `/v1/systems/${id}/start`)).status, 204);
  assert.equal((await api('POST', `/v1/systems/${id}/resize?h=40&w=100`)).status, 204);
  sock.write('tty; stty size; echo marker-$((6*7))\nexit 4\n');
  await ended;
  assert.match(out, /\/dev\/pts\/\d+/);
  assert.match(out, /40 100/);
  assert.match(out, /marker-42/);
  assert.equal((await wait).json.ExitCode, 4);
}
