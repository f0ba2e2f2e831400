// Attach and exec-start: the CLI sends them as `Connection: Upgrade, Upgrade: tcp` POSTs and expects
// `101 UPGRADED`, then raw bytes both ways (frames without a tty). Node hands these to server.on('upgrade'),
// with any request body (exec start's JSON) at the front of `head`. Clients that do not upgrade (dockerode without
// hijack) get a plain 200 streamed response instead, output only.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { StdioClient, StdioSession } from '../../compute/sessions.js';
import { frame, socketClient, upgradeHead, upgraded, writeHttpError } from '../native/stream.js';
import type { Ctx } from './ctx.js';
import { DockerError, dockerConflict, dockerInvalid, dockerNotFound, toDockerError } from './errors.js';
import { ExecStart, parseBody } from './schemas.js';
import { DetachKeyFilter, parseDetachKeys } from './detach-keys.js';

const RAW = 'application/vnd.docker.raw-stream';
const MUX = 'application/vnd.docker.multiplexed-stream';
const on = (v: string | null | undefined) => v === '1' || v === 'true' || v === 'True';

/** `/v1.50/containers/x/attach` → `/containers/x/attach`. */
export const stripVersion = (p: string) => p.replace(/^\/v\d+(\.\d+)?(?=\/)/, '');

/** Read exactly `n` body bytes from what came with the upgrade plus the socket; the rest is stdin. */
function readBody(socket: Duplex, head: Buffer, n: number): Promise<Buffer> {
  if (head.length >= n) {
    if (head.length > n) socket.unshift(head.subarray(n));
    return Promise.resolve(head.subarray(0, n));
  }
  return new Promise((resolve, reject) => {
    let buf = head;
    const onData = (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      if (buf.length < n) return;
      socket.off('data', onData);
      socket.pause();
      if (buf.length > n) socket.unshift(buf.subarray(n));
      resolve(buf.subarray(0, n));
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** Resolve once the exec's exit code is recorded, so the CLI's GET /exec/{id}/json after EOF sees it. */
export function execExited(x: Ctx, execId: string): Promise<void> {
  return new Promise((resolve) => {
    let off = () => {};
    const t = setTimeout(() => (off(), resolve()), 5000);
    off = x.svc.events.subscribe((e) => {
      if (e.Action === 'exec_die' && e.Attributes.execID === execId) {
        clearTimeout(t);
        off();
        resolve();
      }
    });
    try {
      if (x.svc.compute.execs.get(execId).ExitCode !== undefined) (clearTimeout(t), off(), resolve());
    } catch {
      (clearTimeout(t), off(), resolve());
    }
  });
}

/** Route an upgrade request; errors before the 101 go out as docker's JSON error responses. */
export function upgradeHandler(x: Ctx) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    handle(x, req, socket, head).catch((e) => {
      const { status, message } = toDockerError(e);
      writeHttpError(socket, status, { message });
    });
  };
}

async function handle(x: Ctx, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://docker');
  const path = stripVersion(url.pathname);
  const q = url.searchParams;
  const c = x.svc.compute;
  let m: RegExpMatchArray | null;
  let session: StdioSession | undefined;
  if (req.method === 'POST' && (m = path.match(/^\/containers\/([^/]+)\/attach$/))) {
    if (head.length) socket.unshift(head);
    const rec = c.get(decodeURIComponent(m[1]));
    const wantStdin = on(q.get('stdin')) && rec.Init.Stdin;
    const keys = parseDetachKeys(q.get('detachKeys') || 'ctrl-p,ctrl-q');
    // Clients that send no `stream` (older ones) expect the live stream, as before.
    const stream = q.get('stream') === null ? true : on(q.get('stream'));
    upgraded(socket, rec.Init.Tty ? RAW : MUX);
    const client = socketClient(socket, rec.Init.Tty, wantStdin);
    if (on(q.get('logs'))) {
      // The past output first (docker-py's attach(logs=True)); then, with stream, the live one.
      const ac = new AbortController();
      socket.once('close', () => ac.abort());
      await c.logs(rec.Id, { follow: false }, (e) => client.onOutput(e.stream === 'stderr' ? 2 : 1, e.data), ac.signal);
    }
    if (!stream) {
      socket.end();
      return;
    }
    session = await c.attach(rec.Id, client);
    if (wantStdin) {
      const s = session;
      // A detach leaves the container's stdin open (it may be attached again), as dockerd does.
      let detached = false;
      const filter = new DetachKeyFilter(keys, (b) => s.writeStdin(b), () => ((detached = true), s.detach(), socket.end()));
      socket.on('data', (b: Buffer) => !detached && filter.write(b));
      socket.on('end', () => !detached && s.closeStdin());
      socket.on('close', () => s.detach());
      socket.on('error', () => s.detach());
      socket.resume();
      return;
    }
  } else if (req.method === 'POST' && (m = path.match(/^\/exec\/([^/]+)\/start$/))) {
    const n = Number(req.headers['content-length'] ?? 0);
    const raw = await readBody(socket, head, n);
    let json: unknown;
    try {
      json = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch (e) {
      throw dockerInvalid(`invalid JSON body: ${(e as Error).message}`);
    }
    const body = parseBody(ExecStart, json);
    const xr = execRecord(x, decodeURIComponent(m[1]));
    const tty = xr.Process.EmulateConsole ?? false;
    if (body.Detach) {
      await c.execs.start(xr.Id);
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const base = socketClient(socket, tty, xr.Process.CreateStdInPipe ?? false);
    const client: StdioClient = { ...base, onEnd: () => void execExited(x, xr.Id).then(() => base.onEnd()) };
    // As dockerd: the 101 is out before the process starts, so a client that reads the headers with one recv
    // (Python's requests, docker-py, compose) never finds the first output in that read and drops it.
    await new Promise<void>((resolve) => socket.write(upgradeHead(tty ? RAW : MUX), () => resolve()));
    try {
      session = await c.execs.start(xr.Id, client);
    } catch (e) {
      socket.end(startFailure(e, tty));
      return;
    }
  } else {
    throw new DockerError(404, `page not found`);
  }
  const s = session!;
  socket.on('data', (b: Buffer) => s.writeStdin(b));
  socket.on('end', () => s.closeStdin());
  socket.on('close', () => s.detach());
  socket.on('error', () => s.detach());
  socket.resume();
}

export function execRecord(x: Ctx, id: string) {
  try {
    return x.svc.compute.execs.get(id);
  } catch {
    throw dockerNotFound(`No such exec instance: ${id}`);
  }
}

/** A process that could not start: its error goes into the stream (its exit code, 126 or 127, into its record). */
export function startFailure(e: unknown, tty: boolean): Buffer {
  const msg = Buffer.from(`${toDockerError(e).message}\r\n`);
  return tty ? msg : frame(1, msg);
}

/** The same streams for clients that did not ask to upgrade: a 200 response carrying the output only. */
export function responseClient(res: ServerResponse, tty: boolean, onEnd: () => Promise<void> = async () => {}): StdioClient {
  res.writeHead(200, { 'Content-Type': tty ? RAW : MUX });
  res.flushHeaders();
  return {
    wantStdin: false,
    onOutput(stream, data) {
      if (!res.writableEnded) res.write(tty ? data : frame(stream, data));
    },
    onEnd() {
      void onEnd().then(() => res.end());
    },
  };
}

export { dockerConflict };
