// The CRI's streaming server: Exec, Attach and PortForward answer with a one-time URL here; the client (the kubelet,
// critest, crictl) upgrades a request on it to SPDY/3.1 and opens its streams, as Kubernetes' remotecommand
// (`v4.channel.k8s.io` … `channel.k8s.io`) and port-forward (`portforward.k8s.io`) protocols define them, or to a
// WebSocket with the channel protocols (websocket.ts). critest 1.29/1.32 and kubelets up to 1.32 speak SPDY to the
// runtime (the API server turns kubectl's WebSocket `v5.channel.k8s.io` into SPDY toward the kubelet, which passes
// the upgrade through); a client that reaches the kubelet with a WebSocket gets it passed through to here.

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { ComputeSystemRecord } from '../../compute/types.js';
import type { Services } from '../../host/services.js';
import { badState, invalid, oneLine } from '../../common/errors.js';
import { SpdyConnection, type SpdyStream } from './spdy.js';
import { WebSocketServer } from 'ws';
import { acceptWebSocket, WS_PORTFORWARD, WS_REMOTECOMMAND } from './websocket.js';

export interface Streaming {
  exec(rec: ComputeSystemRecord, req: { cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): string;
  attach(rec: ComputeSystemRecord, req: { tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): string;
  portForward(rec: ComputeSystemRecord, req: { port: number[] }): string;
  close(): Promise<void>;
}

export type Session =
  | { kind: 'exec'; id: string; cmd: string[]; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
  | { kind: 'attach'; id: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }
  | { kind: 'portforward'; id: string; netns?: string; ports: number[] };
export type RemoteSession = Extract<Session, { kind: 'exec' | 'attach' }>;

/** What a remote command needs of its transport: the client's streams, and the connection's end. */
export interface RemoteStreams {
  stdin?: Readable;
  stdout?: { write(d: Buffer | string): unknown; end(): unknown };
  stderr?: { write(d: Buffer | string): unknown; end(): unknown };
  error: { write(d: Buffer | string): unknown; end(): unknown };
  resize?: Readable;
  onClose(cb: () => void): void;
  /** Close the connection once what was written has gone out. */
  close(): void;
}

const REMOTECOMMAND = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
const PORTFORWARD = ['portforward.k8s.io'];
/** A URL is good once, for this long (the kubelet uses it at once). */
const TOKEN_TTL_MS = 60_000;
/** How long the client has to open the streams it announced. */
const STREAMS_TIMEOUT_MS = 30_000;

/** The stream protocol to use: the first of the client's (in its order of preference) that we speak. */
export function negotiate(offered: string | string[] | undefined, supported: string[]): string | undefined {
  const list = (Array.isArray(offered) ? offered : [offered ?? '']).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  return list.find((p) => supported.includes(p));
}

/** The status the v4 protocol sends on the error stream when the command ends (metav1.Status as JSON). */
export function exitStatus(code: number): string {
  if (code === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
  return JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command, exit status ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  });
}

/** `podNetns`: the network namespace file of a pod's sandbox; undefined for a pod on the host's network. */
export async function startStreaming(s: Services, o: { address: string; port: number; podNetns: (rec: ComputeSystemRecord) => string | undefined }): Promise<Streaming> {
  const sessions = new Map<string, Session & { expires: number }>();
  const conns = new Set<SpdyConnection>();
  const server: Server = createServer((req, res) => {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('this endpoint only speaks SPDY/3.1 and WebSocket upgrades\n');
  });
  // The WebSocket handshakes are ws's; which session and protocol is ours (websocket.ts).
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const m = /^\/(exec|attach|portforward)\/([0-9a-f]+)$/.exec(req.url ?? '');
    const sess = m ? sessions.get(m[2]) : undefined;
    if (m) sessions.delete(m[2]);
    const fail = (code: number, msg: string) => socket.end(`HTTP/1.1 ${code} ${code === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-type: text/plain\r\ncontent-length: ${msg.length + 1}\r\n\r\n${msg}\n`);
    if (!m || !sess || sess.kind !== m[1] || sess.expires < Date.now()) return fail(404, 'unknown or expired streaming session');
    if (/^websocket$/i.test(String(req.headers.upgrade ?? ''))) {
      if (acceptWebSocket(s, wss, req, socket, head, sess) === undefined) {
        return fail(400, `no supported WebSocket protocol offered (we speak ${(sess.kind === 'portforward' ? WS_PORTFORWARD : WS_REMOTECOMMAND).join(', ')})`);
      }
      return;
    }
    if (!/spdy\/3\.1/i.test(String(req.headers.upgrade ?? ''))) return fail(400, 'only SPDY/3.1 and WebSocket upgrades are served');
    const proto = negotiate(req.headers['x-stream-protocol-version'], sess.kind === 'portforward' ? PORTFORWARD : REMOTECOMMAND);
    if (!proto) return fail(400, `no supported stream protocol offered (we speak ${(sess.kind === 'portforward' ? PORTFORWARD : REMOTECOMMAND).join(', ')})`);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${proto}\r\n\r\n`);
    const conn = new SpdyConnection(socket as Socket);
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    if (sess.kind === 'portforward') portForward(conn, sess);
    else void spdyRemoteCommand(s, conn, sess, proto).catch((e) => s.log.warn({ err: oneLine(e) }, `cri ${sess.kind}`));
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(o.port, o.address, () => res());
  });
  const addr = server.address() as { address: string; port: number };
  const base = `http://${addr.address}:${addr.port}`;
  const issue = (sess: Session) => {
    const token = randomBytes(16).toString('hex');
    for (const [k, v] of sessions) if (v.expires < Date.now()) sessions.delete(k);
    sessions.set(token, { ...sess, expires: Date.now() + TOKEN_TTL_MS });
    return `${base}/${sess.kind}/${token}`;
  };
  const running = (rec: ComputeSystemRecord) => {
    if (rec.State !== 'Running') throw badState(`container ${rec.Id} is not running`);
  };
  const needStream = (r: { stdin: boolean; stdout: boolean; stderr: boolean }) => {
    if (!r.stdin && !r.stdout && !r.stderr) throw invalid('one of stdin, stdout and stderr must be requested');
    if (r.stderr && (r as { tty?: boolean }).tty) throw invalid('stderr cannot be requested with a tty: the terminal joins them');
  };
  return {
    exec(rec, r) {
      running(rec);
      needStream(r);
      if (!r.cmd?.length) throw invalid('no command given');
      return issue({ kind: 'exec', id: rec.Id, cmd: r.cmd, tty: r.tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr });
    },
    attach(rec, r) {
      running(rec);
      needStream(r);
      if (r.stdin && !rec.Init.Stdin) throw invalid(`container ${rec.Id} was not created with stdin`);
      return issue({ kind: 'attach', id: rec.Id, tty: rec.Init.Tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr && !rec.Init.Tty });
    },
    portForward(rec, r) {
      running(rec);
      for (const p of r.port ?? []) if (!(p > 0 && p < 65536)) throw invalid(`invalid port ${p}`);
      return issue({ kind: 'portforward', id: rec.Id, netns: o.podNetns(rec), ports: r.port ?? [] });
    },
    async close() {
      for (const c of conns) c.close();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Collect the streams the client announced (by `streamtype`), then run the command or attach. */
async function spdyRemoteCommand(s: Services, conn: SpdyConnection, sess: RemoteSession, proto: string): Promise<void> {
  const want = new Set(['error', ...(sess.stdin ? ['stdin'] : []), ...(sess.stdout ? ['stdout'] : []), ...(sess.stderr && !sess.tty ? ['stderr'] : []), ...(sess.tty && proto !== 'channel.k8s.io' && proto !== 'v2.channel.k8s.io' ? ['resize'] : [])]);
  const streams = new Map<string, SpdyStream>();
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the client opened ${[...streams.keys()].join(', ') || 'no streams'} of ${[...want].join(', ')}`)), STREAMS_TIMEOUT_MS);
    const onStream = (st: SpdyStream) => {
      streams.set(st.headers.streamtype ?? '', st);
      if ([...want].every((w) => streams.has(w))) {
        clearTimeout(t);
        conn.off('stream', onStream);
        resolve();
      }
    };
    conn.on('stream', onStream);
    conn.once('close', () => (clearTimeout(t), reject(new Error('the client went away before opening its streams'))));
  }).catch((e) => {
    conn.close();
    throw e;
  });
  await runRemoteCommand(s, sess, proto, {
    stdin: streams.get('stdin'),
    stdout: streams.get('stdout'),
    stderr: streams.get('stderr'),
    error: streams.get('error')!,
    resize: streams.get('resize'),
    onClose: (cb) => conn.once('close', cb),
    close: () => setTimeout(() => conn.close(), 50).unref(),
  });
}

/** Whether the protocol sends the v4 Status object on the error stream (the v4 and v5 channel protocols do). */
const statusProtocol = (proto: string) => /^v[45]\./.test(proto);

/** Run the command or attach on streams however they came (SPDY streams or WebSocket channels). */
export async function runRemoteCommand(s: Services, sess: RemoteSession, proto: string, io: RemoteStreams): Promise<void> {
  const { stdout: out, stderr: err, error: errStream, stdin, resize } = io;
  let ended!: () => void;
  const outputEnded = new Promise<void>((r) => (ended = r));
  const client = {
    wantStdin: !!stdin,
    onOutput: (stream: 1 | 2, d: Buffer) => (stream === 2 && err ? err : out)?.write(d),
    onEnd: () => ended(),
  };
  const finish = (status: string | undefined) => {
    out?.end();
    err?.end();
    // v4 sends a Status object; the older protocols send an error text only on failure.
    if (status) errStream.write(status);
    errStream.end();
    io.close();
  };

  if (sess.kind === 'exec') {
    let x;
    try {
      x = s.compute.execs.create(sess.id, { CommandArgs: sess.cmd, EmulateConsole: sess.tty, CreateStdInPipe: !!stdin });
    } catch (e) {
      return finish(oneLine(e));
    }
    const exited = new Promise<number>((resolve) => {
      const off = s.events.subscribe((ev) => {
        if (ev.Action === 'exec_die' && ev.Attributes.execID === x.Id) {
          off();
          resolve(Number(ev.Attributes.exitCode));
        }
      });
    });
    let session;
    try {
      session = await s.compute.execs.start(x.Id, client);
    } catch (e) {
      return finish(statusProtocol(proto) ? JSON.stringify({ metadata: {}, status: 'Failure', message: oneLine(e) }) : oneLine(e));
    }
    stdin?.on('data', (d: Buffer) => session?.writeStdin(d));
    stdin?.on('end', () => session?.closeStdin());
    onResize(resize, (h, w) => void s.compute.execs.resize(x.Id, h, w).catch(() => {}));
    io.onClose(() => session?.detach());
    const code = (await Promise.all([outputEnded, exited]))[1];
    return finish(statusProtocol(proto) ? exitStatus(code) : code === 0 ? undefined : `command terminated with non-zero exit code: ${code}`);
  }

  let session;
  try {
    session = await s.compute.attach(sess.id, client);
  } catch (e) {
    return finish(oneLine(e));
  }
  stdin?.on('data', (d: Buffer) => session.writeStdin(d));
  stdin?.on('end', () => session.closeStdin());
  onResize(resize, (h, w) => void s.compute.resize(sess.id, h, w).catch(() => {}));
  // A client that goes away has ended its stdin too (containerd's rule: with stdin_once, that closes the container's).
  io.onClose(() => (session.closeStdin(), session.detach()));
  await outputEnded;
  finish(statusProtocol(proto) ? JSON.stringify({ metadata: {}, status: 'Success' }) : undefined);
}

/** The resize stream carries JSON objects {"Width":w,"Height":h}, one after another (SPDY clients end each with a
 *  newline, WebSocket ones send one per message). */
function onResize(stream: Readable | undefined, apply: (rows: number, cols: number) => void): void {
  if (!stream) return;
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('}')) >= 0) {
      const one = buf.slice(0, i + 1);
      buf = buf.slice(i + 1);
      try {
        const sz = JSON.parse(one.trim()) as { Width: number; Height: number };
        if (sz.Width > 0 && sz.Height > 0) apply(sz.Height, sz.Width);
      } catch {
        /* not a size: ignore it */
      }
    }
  });
}

/**
 * Port-forward: the client opens an error stream and a data stream per connection (same `requestid`, the pod's
 * `port`); the data stream is spliced onto a TCP connection to 127.0.0.1:<port> inside the pod's network namespace,
 * as the kubelet means it (a server bound to the pod's loopback only is reached too). Node cannot enter a namespace,
 * so a small relay does: the host's busybox `nc` under nsenter. A host-network pod's loopback is the host's.
 */
export function portForward(conn: SpdyConnection, sess: Extract<Session, { kind: 'portforward' }>): void {
  const errors = new Map<string, SpdyStream>();
  conn.on('stream', (st: SpdyStream) => {
    const rid = st.headers.requestid ?? '';
    const port = Number(st.headers.port);
    if (st.headers.streamtype === 'error') {
      errors.set(rid, st);
      st.resume();
      return;
    }
    if (st.headers.streamtype !== 'data') return void st.end();
    const fail = (msg: string) => {
      const e = errors.get(rid);
      e?.end(msg);
      st.end();
    };
    if (!(port > 0 && port < 65536)) return fail(`invalid port ${st.headers.port}`);
    if (sess.ports.length && !sess.ports.includes(port)) return fail(`port ${port} was not asked for`);
    const done = () => {
      st.end();
      errors.get(rid)?.end();
      errors.delete(rid);
    };
    dialPod(sess.netns, port, st, st, (err) => (err ? fail(err) : done()));
  });
}

/**
 * A TCP connection to 127.0.0.1:<port> in the pod's network namespace (the host's for a host-network pod): `up` is
 * written to it, what it answers goes to `down` (not ended: the caller ends its streams in `done`), and `done` is
 * called once, with an error text if the connection could not be made. Node cannot enter a namespace, so a small
 * relay does: the host's busybox `nc` under nsenter. Returns a function that cuts the connection.
 */
export function dialPod(netns: string | undefined, port: number, up: Readable, down: Writable, done: (err?: string) => void): () => void {
  let finished = false;
  const end = (err?: string) => {
    if (finished) return;
    finished = true;
    done(err);
  };
  if (!netns) {
    const sock: Socket = connect({ host: '127.0.0.1', port });
    sock.on('error', (e) => end(`failed to connect to port ${port} of the pod: ${e.message}`));
    sock.on('connect', () => {
      up.pipe(sock);
      sock.pipe(down, { end: false });
    });
    up.on('close', () => sock.destroy());
    sock.on('close', () => end());
    return () => sock.destroy();
  }
  const relay = spawn('nsenter', [`--net=${netns}`, '--', 'busybox', 'nc', '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  let sent = false;
  relay.stderr.on('data', (d) => (err += d));
  relay.stdout.on('data', () => (sent = true));
  relay.stdin.on('error', () => {});
  up.pipe(relay.stdin);
  relay.stdout.pipe(down, { end: false });
  up.on('close', () => relay.kill('SIGKILL'));
  relay.on('error', (e) => end(`failed to reach port ${port} of the pod: ${e.message}`));
  relay.on('close', (code) => {
    if (code !== 0 && !sent) return end(`failed to connect to port ${port} of the pod: ${err.trim().split('\n').pop() || `exit ${code}`}`);
    end();
  });
  return () => relay.kill('SIGKILL');
}
