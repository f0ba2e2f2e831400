// WebSocket streaming beside SPDY, as the kubelet's own CRI streaming library serves it: each WebSocket message is one
// channel's data, its first byte the channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize); the `base64.` variants
// send text messages with the channel as an ASCII digit and the data in base64. `v5.channel.k8s.io` adds the close
// signal: a message [255, channel] says that channel is done (a client's end of stdin). Port-forward over WebSocket is
// a data and an error channel per port (2i, 2i+1), each opened with the port as 16 bits little-endian, as the
// kubelet's library serves it. (KEP-4006's `SPDY/3.1+portforward.k8s.io`, SPDY tunnelled in a WebSocket, is spoken
// between kubectl and the API server, which speaks SPDY on toward the kubelet; its name is not a valid WebSocket
// subprotocol token, which `ws` rightly refuses, so it is not offered here.)

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { PassThrough, Writable } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Services } from '../../host/services.js';
import { oneLine } from '../../common/errors.js';
import { dialPod, negotiate, runRemoteCommand, type RemoteSession, type Session } from './streaming.js';

export const WS_REMOTECOMMAND = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'];
export const WS_PORTFORWARD = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];
const CLOSE_SIGNAL = 255;

/** One WebSocket's channels: readers for what the client sends, senders for what we send. */
export class WsChannels {
  private readonly readers = new Map<number, PassThrough>();
  readonly base64: boolean;
  readonly closeSignal: boolean;

  constructor(
    private readonly ws: WebSocket,
    protocol: string,
  ) {
    this.base64 = protocol.includes('base64.');
    this.closeSignal = protocol.startsWith('v5.');
    ws.on('message', (data: Buffer) => this.receive(data));
    ws.on('close', () => {
      for (const r of this.readers.values()) r.end();
    });
    ws.on('error', () => ws.terminate());
  }

  /** A message from the client, as its channel's data or a close signal. */
  private receive(m: Buffer): void {
    if (!m.length) return;
    let ch = m[0];
    let data = m.subarray(1);
    if (this.base64) {
      ch -= 0x30;
      data = Buffer.from(data.toString('latin1'), 'base64');
    }
    if (this.closeSignal && m[0] === CLOSE_SIGNAL) return void (data.length && this.readers.get(data[0])?.end());
    const r = this.readers.get(ch);
    if (r && !r.writableEnded) r.write(data);
  }

  reader(ch: number): PassThrough {
    let r = this.readers.get(ch);
    if (!r) this.readers.set(ch, (r = new PassThrough()));
    return r;
  }

  send(ch: number, data: Buffer | string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    if (this.base64) this.ws.send(String.fromCharCode(0x30 + ch) + b.toString('base64'));
    else this.ws.send(Buffer.concat([Buffer.from([ch]), b]));
  }

  /** This side is done with a channel: said with v5's close signal; the older protocols have no way to say it. */
  end(ch: number): void {
    if (this.closeSignal && this.ws.readyState === WebSocket.OPEN) this.ws.send(Buffer.from([CLOSE_SIGNAL, ch]));
  }

  sender(ch: number) {
    return { write: (d: Buffer | string) => this.send(ch, d), end: () => this.end(ch) };
  }

  /** A writable stream onto a channel (its end is not the channel's: the caller ends it). */
  writable(ch: number): Writable {
    return new Writable({ write: (chunk: Buffer, _enc, cb) => (this.send(ch, chunk), cb()) });
  }
}

/** Serve a streaming session over a WebSocket upgrade; false when the client offers no protocol we speak. */
export function acceptWebSocket(s: Services, wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer, sess: Session): string | undefined {
  const offered = String(req.headers['sec-websocket-protocol'] ?? '');
  const supported = sess.kind === 'portforward' ? WS_PORTFORWARD : WS_REMOTECOMMAND;
  // No protocol at all is the binary channel protocol, as the kubelet takes it.
  const proto = offered.trim() ? negotiate(offered, supported) : '';
  if (proto === undefined) return undefined;
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (sess.kind === 'portforward') {
      return wsPortForward(ws, new WsChannels(ws, proto), sess, req);
    }
    void wsRemoteCommand(s, ws, proto, sess).catch((e) => s.log.warn({ err: oneLine(e) }, `cri ${sess.kind} (websocket)`));
  });
  return proto;
}

async function wsRemoteCommand(s: Services, ws: WebSocket, proto: string, sess: RemoteSession): Promise<void> {
  const ch = new WsChannels(ws, proto);
  const tty = sess.tty;
  // An empty message on the lowest channel we write tells the client the streams are there.
  ch.send(sess.stdout ? 1 : sess.stderr && !tty ? 2 : 3, Buffer.alloc(0));
  await runRemoteCommand(s, sess, proto || 'channel.k8s.io', {
    stdin: sess.stdin ? ch.reader(0) : undefined,
    stdout: sess.stdout ? ch.sender(1) : undefined,
    stderr: sess.stderr && !tty ? ch.sender(2) : undefined,
    error: ch.sender(3),
    resize: tty ? ch.reader(4) : undefined,
    onClose: (cb) => ws.once('close', cb),
    close: () => ws.close(1000),
  });
}

/** The kubelet's WebSocket port-forward: one connection into the pod per port for the session's lifetime. */
function wsPortForward(ws: WebSocket, ch: WsChannels, sess: Extract<Session, { kind: 'portforward' }>, req: IncomingMessage): void {
  // The ports of the CRI request; a client may also name them in the query, as it does toward the kubelet.
  const query = new URL(req.url ?? '/', 'http://x').searchParams.getAll('port').flatMap((p) => p.split(',')).map(Number);
  const ports = sess.ports.length ? sess.ports : query;
  if (!ports.length || ports.some((p) => !(p > 0 && p < 65536))) return void ws.close(1008, 'ports must be given (1-65535)');
  let open = ports.length;
  ports.forEach((port, i) => {
    const portBytes = Buffer.alloc(2);
    portBytes.writeUInt16LE(port);
    ch.send(2 * i, portBytes);
    ch.send(2 * i + 1, portBytes);
    dialPod(sess.netns, port, ch.reader(2 * i), ch.writable(2 * i), (err) => {
      if (err) ch.send(2 * i + 1, err);
      ch.end(2 * i);
      ch.end(2 * i + 1);
      if (--open === 0) ws.close(1000);
    });
  });
  ws.once('close', () => {
    for (let i = 0; i < ports.length; i++) ch.reader(2 * i).end();
  });
}
