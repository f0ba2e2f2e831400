// A client of conmon's attach socket (SOCK_SEQPACKET). Each packet from conmon is one read of the container's
// stdout or stderr, prefixed by one byte naming the pipe (conmon's stdpipe_t: 2 = stdout, 3 = stderr). Packets we
// send are written to the container's stdin; half-closing our side makes conmon close the container's stdin.

import { badState } from '../../common/errors.js';
import type { Attachment } from '../backend.js';

// The native addon (a few MB resident) is loaded on the first attach, not with the daemon.
let seqpacket: Promise<typeof import('node-unix-socket').SeqpacketSocket> | undefined;
const loadSeqpacket = () => (seqpacket ??= import('node-unix-socket').then((m) => m.default.SeqpacketSocket));
type Sock = InstanceType<Awaited<ReturnType<typeof loadSeqpacket>>>;

const CONMON_STDOUT = 2;
const CONMON_STDERR = 3;

class SeqpacketAttachment implements Attachment {
  private outCbs: ((stream: 1 | 2, data: Buffer) => void)[] = [];
  private closeCbs: (() => void)[] = [];
  private pending: [1 | 2, Buffer][] = [];
  private closed = false;
  private stdinClosed = false;

  constructor(private sock: Sock) {
    sock.on('data', (buf: Buffer) => {
      if (buf.length < 1) return;
      const tag = buf[0];
      const stream: 1 | 2 = tag === CONMON_STDERR ? 2 : 1;
      if (tag !== CONMON_STDOUT && tag !== CONMON_STDERR) return;
      const data = Buffer.from(buf.subarray(1));
      if (this.outCbs.length) for (const cb of this.outCbs) cb(stream, data);
      else this.pending.push([stream, data]);
    });
    const done = () => this.finish();
    sock.on('end', done);
    sock.on('close', done);
    sock.on('error', done);
  }

  private finish() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sock.destroy();
    } catch {
      /* already gone */
    }
    // Deliver anything still buffered before announcing the close.
    setImmediate(() => {
      for (const cb of this.closeCbs.splice(0)) cb();
    });
  }

  onOutput(cb: (stream: 1 | 2, data: Buffer) => void): void {
    this.outCbs.push(cb);
    for (const [s, d] of this.pending.splice(0)) cb(s, d);
  }

  onClose(cb: () => void): void {
    if (this.closed) setImmediate(cb);
    else this.closeCbs.push(cb);
  }

  writeStdin(data: Buffer): void {
    if (this.closed || this.stdinClosed) return;
    // conmon reads at most 32 KiB - 1 per packet; keep packets below that.
    for (let off = 0; off < data.length; off += 16384) {
      const chunk = Buffer.from(data.subarray(off, off + 16384));
      this.sock.write(chunk);
    }
  }

  closeStdin(): void {
    if (this.closed || this.stdinClosed) return;
    this.stdinClosed = true;
    this.sock.end();
  }

  detach(): void {
    this.finish();
  }
}

export async function connectAttach(path: string): Promise<Attachment> {
  const SeqpacketSocket = await loadSeqpacket().catch((e: Error) => {
    seqpacket = undefined;
    throw badState(`cannot attach: ${e.message}`);
  });
  return new Promise((resolve, reject) => {
    const sock = new SeqpacketSocket();
    const onErr = (e: Error) => reject(badState(`cannot attach: ${e.message}`));
    sock.once('error', onErr);
    try {
      sock.connect(path, () => {
        sock.off('error', onErr);
        resolve(new SeqpacketAttachment(sock));
      });
    } catch (e) {
      reject(badState(`cannot attach (${path}): ${(e as Error).message}`));
    }
  });
}

/**
 * The attach sessions of one container share one connection to its monitor. conmon closes the container's stdin
 * (unless told to leave it open) when ANY attach connection ends, so a client that only read the output would close
 * it by going away; sharing one connection, kept while the container runs, leaves that decision to the sessions: the
 * stdin closes when a session that carried stdin ends it (docker's and the CRI's StdinOnce). A session that ends its
 * stdin takes the connection with it (half-closed, still carrying output to the sessions on it); the next attach
 * opens a fresh one.
 */
export class AttachHub {
  private readonly views = new Set<HubView>();
  /** A session ended its stdin on this connection: no new session joins it. */
  retired = false;
  closed = false;

  constructor(private readonly conn: Attachment) {
    conn.onOutput((s, d) => {
      for (const v of this.views) v.output(s, d);
    });
    conn.onClose(() => {
      this.closed = true;
      for (const v of [...this.views]) v.closed();
      this.views.clear();
    });
  }

  get usable(): boolean {
    return !this.closed && !this.retired;
  }

  join(): Attachment {
    const v = new HubView(this);
    if (this.closed) v.closed();
    else this.views.add(v);
    return v;
  }

  writeStdin(d: Buffer): void {
    if (!this.retired) this.conn.writeStdin(d);
  }

  endStdin(): void {
    if (this.retired) return;
    this.retired = true;
    this.conn.closeStdin();
  }

  leave(v: HubView): void {
    this.views.delete(v);
    // An idle connection that still holds the stdin stays (closing it would close the stdin); a retired one goes.
    if (this.retired && !this.views.size) this.conn.detach();
  }

  /** The container is gone. */
  close(): void {
    this.retired = true;
    this.conn.detach();
  }
}

class HubView implements Attachment {
  private outCbs: ((stream: 1 | 2, data: Buffer) => void)[] = [];
  private closeCbs: (() => void)[] = [];
  private done = false;
  private stdinEnded = false;

  constructor(private readonly hub: AttachHub) {}

  output(s: 1 | 2, d: Buffer): void {
    for (const cb of this.outCbs) cb(s, d);
  }

  closed(): void {
    if (this.done) return;
    this.done = true;
    setImmediate(() => {
      for (const cb of this.closeCbs.splice(0)) cb();
    });
  }

  onOutput(cb: (stream: 1 | 2, data: Buffer) => void): void {
    this.outCbs.push(cb);
  }

  onClose(cb: () => void): void {
    if (this.done) setImmediate(cb);
    else this.closeCbs.push(cb);
  }

  writeStdin(data: Buffer): void {
    if (!this.done && !this.stdinEnded) this.hub.writeStdin(data);
  }

  closeStdin(): void {
    if (this.done || this.stdinEnded) return;
    this.stdinEnded = true;
    this.hub.endStdin();
  }

  detach(): void {
    if (this.done) return;
    this.hub.leave(this);
    this.closed();
  }
}
