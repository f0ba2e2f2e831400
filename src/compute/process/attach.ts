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
