// Requests to the daemon over its unix socket with node:http only (no dependencies: start-up is part of `silo run`).

import http from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { CliError, DaemonError } from './errors.js';

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

function daemonError(status: number, body: Buffer): DaemonError {
  const text = body.toString('utf8').trim();
  try {
    const j = JSON.parse(text) as { message?: string; code?: string };
    if (j && typeof j.message === 'string') return new DaemonError(j.message.replace(/\s*\n\s*/g, '; '), status, j.code);
  } catch {
    /* not JSON */
  }
  return new DaemonError(text.split('\n')[0] || `${status} ${http.STATUS_CODES[status] ?? ''}`.trim(), status);
}

interface Opts {
  json?: unknown;
  body?: Readable;
  headers?: Record<string, string | number>;
}

function open(method: string, path: string, o: Opts = {}): http.ClientRequest {
  const headers: Record<string, string | number> = { ...o.headers };
  let payload: Buffer | undefined;
  if (o.json !== undefined) {
    payload = Buffer.from(JSON.stringify(o.json));
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = payload.length;
  }
  const req = http.request({ socketPath: socketPathOf(hostUrl()), path, method, headers, agent: false });
  if (o.body) o.body.pipe(req);
  else req.end(payload);
  return req;
}

/** A response whose status was checked (2xx), body unread. Errors become DaemonError / CliError. */
export function stream(method: string, path: string, o: Opts = {}): Promise<http.IncomingMessage> {
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

function readAll(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

/** Request → parsed JSON body (undefined for an empty body, e.g. 204). */
export async function call<T = unknown>(method: string, path: string, json?: unknown, o: Opts = {}): Promise<T> {
  const res = await stream(method, path, { ...o, json });
  const b = await readAll(res);
  return (b.length ? JSON.parse(b.toString('utf8')) : undefined) as T;
}

/** `Connection: Upgrade` request → the raw socket carrying the process' stdio (any bytes read past the 101 put back). */
export async function upgrade(method: string, path: string, json?: unknown): Promise<Duplex> {
  return (await upgradeWith(method, path, json)).socket;
}

/** The same, with the 101's headers. */
export function upgradeWith(method: string, path: string, json?: unknown): Promise<{ socket: Duplex; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = open(method, path, { json, headers: { Connection: 'Upgrade', Upgrade: 'tcp' } });
    req.on('error', (e) => reject(connectError(e)));
    req.on('upgrade', (res, socket, head) => {
      if (head.length) socket.unshift(head);
      resolve({ socket, headers: res.headers });
    });
    req.on('response', (res) => {
      readAll(res).then(
        (b) =>
          res.statusCode! >= 400
            ? reject(daemonError(res.statusCode!, b))
            : reject(new CliError(`the daemon did not upgrade the connection (status ${res.statusCode})`)),
        reject,
      );
    });
  });
}

/** An id, id prefix or name → the system's record. */
export async function resolveSystem<T = import('../compute/types.js').ComputeSystemRecord>(ref: string): Promise<T> {
  return call<T>('GET', `/v1/systems/${enc(ref)}`);
}

export async function resolveId(ref: string): Promise<string> {
  if (/^[0-9a-f]{64}$/.test(ref)) return ref;
  return (await resolveSystem(ref)).Id;
}
