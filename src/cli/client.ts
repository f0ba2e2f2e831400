// Requests to the daemon over its unix socket, no dependencies (start-up is part of `silo run`): JSON calls and
// upgrades with the few lines of HTTP/1.1 in http1.ts; node:http (≈10 ms to load and use) only for streamed bodies.

import type { IncomingHttpHeaders, IncomingMessage, ClientRequest } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { CliError, DaemonError } from './errors.js';
import { exchange, readBody } from './http1.js';

export const DEFAULT_HOST = 'unix:///run/silo/silo.sock';

/** `unix:///path` (or a bare absolute path) → the socket path. */
export function socketPathOf(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new CliError(`invalid host "${host}": only unix:///path is supported`);
}

export function hostUrl(): string {
  return process.env.SILO_HOST || DEFAULT_HOST;
}

export type Query = Record<string, string | number | boolean | undefined | (string | number)[]>;

/** Path plus query string; undefined/false values are left out, arrays repeat the key. */
export function withQuery(path: string, q?: Query): string {
  if (!q) return path;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === false) continue;
    const vs = Array.isArray(v) ? v : [v === true ? 1 : v];
    for (const x of vs) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(x))}`);
  }
  return parts.length ? `${path}?${parts.join('&')}` : path;
}

export const enc = encodeURIComponent;

function connectError(e: NodeJS.ErrnoException): CliError {
  const url = hostUrl();
  if (e.code === 'EACCES' || e.code === 'EPERM')
    return new CliError(`permission denied while trying to connect to the Silo daemon socket at ${url}`);
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ENOTSOCK')
    return new CliError(`Cannot connect to the Silo daemon at ${url}. Is the silo daemon running?`);
  return new CliError(`error during connect: ${e.message}`);
}

function daemonError(status: number, body: Buffer, reason?: string): DaemonError {
  const text = body.toString('utf8').trim();
  try {
    const j = JSON.parse(text) as { message?: string; code?: string };
    if (j && typeof j.message === 'string') return new DaemonError(j.message.replace(/\s*\n\s*/g, '; '), status, j.code);
  } catch {
    /* not JSON */
  }
  return new DaemonError(text.split('\n')[0] || `${status} ${reason ?? process.getBuiltinModule('node:http').STATUS_CODES[status] ?? ''}`.trim(), status);
}

interface Opts {
  json?: unknown;
  body?: Readable;
  headers?: Record<string, string | number>;
}

function jsonPayload(json: unknown, headers: Record<string, string | number>): Buffer | undefined {
  if (json === undefined) return undefined;
  const payload = Buffer.from(JSON.stringify(json));
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = payload.length;
  return payload;
}

/** A request with node:http (bodies streamed either way). */
function open(method: string, path: string, o: Opts = {}): ClientRequest {
  const headers: Record<string, string | number> = { ...o.headers };
  const payload = jsonPayload(o.json, headers);
  const req = process.getBuiltinModule('node:http').request({ socketPath: socketPathOf(hostUrl()), path, method, headers, agent: false });
  if (o.body) o.body.pipe(req);
  else req.end(payload);
  return req;
}

/** A response whose status was checked (2xx), body unread. Errors become DaemonError / CliError. */
export function stream(method: string, path: string, o: Opts = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = open(method, path, o);
    req.on('error', (e) => reject(connectError(e)));
    o.body?.on('error', (e) => {
      req.destroy();
      reject(new CliError(e.message));
    });
    req.on('response', (res) => {
      if (res.statusCode! < 400) return resolve(res);
      readAll(res).then((b) => reject(daemonError(res.statusCode!, b)), reject);
    });
  });
}

function readAll(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

/** A request without a streamed body over http1.ts: its answer's head, the socket paused after it. */
function send(method: string, path: string, json: unknown, headers: Record<string, string | number>) {
  // What node:http refuses too: a path that would break the request line.
  if (/[^\x21-\x7e]/.test(path)) throw new CliError(`request path contains unescaped characters: ${JSON.stringify(path)}`);
  const h: Record<string, string | number> = { ...headers };
  const payload = jsonPayload(json, h);
  return exchange(socketPathOf(hostUrl()), method, path, h, payload).catch((e: NodeJS.ErrnoException) => {
    throw connectError(e);
  });
}

/** Request → parsed JSON body (undefined for an empty body, e.g. 204). */
export async function call<T = unknown>(method: string, path: string, json?: unknown, o: Opts = {}): Promise<T> {
  let b: Buffer;
  if (o.body) b = await readAll(await stream(method, path, { ...o, json }));
  else {
    const a = await send(method, path, json, { Connection: 'close', ...o.headers });
    b = await readBody(a, method).catch((e: NodeJS.ErrnoException) => {
      throw connectError(e);
    });
    if (a.status >= 400) throw daemonError(a.status, b, a.reason);
  }
  return (b.length ? JSON.parse(b.toString('utf8')) : undefined) as T;
}

/** `Connection: Upgrade` request → the raw socket carrying the process' stdio (any bytes read past the 101 put back). */
export async function upgrade(method: string, path: string, json?: unknown): Promise<Duplex> {
  return (await upgradeWith(method, path, json)).socket;
}

/** The same, with the 101's headers. */
export async function upgradeWith(method: string, path: string, json?: unknown): Promise<{ socket: Duplex; headers: IncomingHttpHeaders }> {
  const a = await send(method, path, json, { Connection: 'Upgrade', Upgrade: 'tcp' });
  if (a.status === 101) {
    if (a.rest.length) a.socket.unshift(a.rest);
    return { socket: a.socket, headers: a.headers };
  }
  const b = await readBody(a, method).catch((e: NodeJS.ErrnoException) => {
    throw connectError(e);
  });
  if (a.status >= 400) throw daemonError(a.status, b, a.reason);
  throw new CliError(`the daemon did not upgrade the connection (status ${a.status})`);
}

/** An id, id prefix or name → the system's record. */
export async function resolveSystem<T = import('../compute/types.js').ComputeSystemRecord>(ref: string): Promise<T> {
  return call<T>('GET', `/v1/systems/${enc(ref)}`);
}

export async function resolveId(ref: string): Promise<string> {
  if (/^[0-9a-f]{64}$/.test(ref)) return ref;
  return (await resolveSystem(ref)).Id;
}
