// The server side of SPDY/3.1 as Kubernetes' streaming clients speak it (kubelet, critest, kubectl through the API
// server): after an HTTP upgrade the client opens every stream (SYN_STREAM with a `streamtype` header and no HTTP
// pseudo-headers, which HTTP-minded SPDY libraries refuse), the server answers each with SYN_REPLY and moves bytes in
// DATA frames. Only what those clients use is here: no server push, no priorities, no flow-control enforcement of our
// own sends (the clients do not enforce it either), windows kept open for the peer with WINDOW_UPDATE. Streams can be
// opened too (`openStream`), which is all a client needs: the tests drive the server with it.

import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { inflateSync, constants as z } from 'node:zlib';
import spdyDictionaries from 'spdy-transport/lib/spdy-transport/protocol/spdy/dictionary.js';

/** The zlib dictionary of SPDY/3 header blocks (a constant of the protocol; the spdy-transport package carries it). */
const DICTIONARY: Buffer = (spdyDictionaries as Record<string, Buffer>)[3];

const enum Type {
  SynStream = 1,
  SynReply = 2,
  RstStream = 3,
  Settings = 4,
  Ping = 6,
  GoAway = 7,
  Headers = 8,
  WindowUpdate = 9,
}
const FLAG_FIN = 0x01;
const VERSION = 3;
const MAX_DATA = 32 * 1024;

/** A header block as SPDY/3 lays it out before compression: counts and lengths are 32-bit. */
export function encodeHeaders(h: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const entries = Object.entries(h);
  parts.push(u32(entries.length));
  for (const [k, v] of entries) {
    const kb = Buffer.from(k.toLowerCase());
    const vb = Buffer.from(v);
    parts.push(u32(kb.length), kb, u32(vb.length), vb);
  }
  return Buffer.concat(parts);
}

export function decodeHeaders(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let o = 0;
  const n = b.readUInt32BE(o);
  o += 4;
  for (let i = 0; i < n; i++) {
    const kl = b.readUInt32BE(o);
    const k = b.subarray(o + 4, o + 4 + kl).toString();
    o += 4 + kl;
    const vl = b.readUInt32BE(o);
    // Several values of one name are NUL-separated; the streaming headers have one each.
    out[k.toLowerCase()] = b.subarray(o + 4, o + 4 + vl).toString().split('\0')[0];
    o += 4 + vl;
  }
  return out;
}

/**
 * Our side of the header compression context: a zlib stream of stored (uncompressed) deflate blocks, one per header
 * block, each byte-aligned so the next one continues it. Without a preset dictionary (no FDICT bit), so the peer's
 * inflater, which offers the SPDY dictionary, simply does not need it.
 */
export class StoredDeflater {
  private started = false;

  block(data: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      parts.push(Buffer.from([0x78, 0x01]));
      this.started = true;
    }
    for (let o = 0; o < data.length || (o === 0 && data.length === 0); o += 0xffff) {
      const chunk = data.subarray(o, o + 0xffff);
      const h = Buffer.alloc(5);
      h[0] = 0; // BFINAL 0, BTYPE 00 (stored)
      h.writeUInt16LE(chunk.length, 1);
      h.writeUInt16LE(~chunk.length & 0xffff, 3);
      parts.push(h, chunk);
      if (data.length === 0) break;
    }
    // An empty stored block ends each header block, as zlib's sync flush does: inflaters (Go's among them) hand out
    // what they decoded when they meet it instead of reading on into the next frame's bytes.
    parts.push(Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]));
    return Buffer.concat(parts);
  }
}

/** The peer's header compression context: every block inflated with what came before it. */
class Inflater {
  private input: Buffer[] = [];
  private seen = 0;

  block(data: Buffer): Buffer {
    this.input.push(data);
    const all = inflateSync(Buffer.concat(this.input), { dictionary: DICTIONARY, finishFlush: z.Z_SYNC_FLUSH });
    const out = all.subarray(this.seen);
    this.seen = all.length;
    return out;
  }
}

export class SpdyStream extends Duplex {
  /** Closed by the peer for writing (FIN received). */
  remoteClosed = false;
  private localClosed = false;

  constructor(
    private readonly conn: SpdyConnection,
    readonly id: number,
    readonly headers: Record<string, string>,
  ) {
    super({ allowHalfOpen: true });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.conn.sendData(this.id, chunk, false);
    cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.closeLocal();
    cb();
  }

  /** Our half closed: an empty DATA frame with FIN. */
  closeLocal(): void {
    if (this.localClosed) return;
    this.localClosed = true;
    this.conn.sendData(this.id, Buffer.alloc(0), true);
  }

  /** From the connection: a DATA frame's payload. */
  receive(data: Buffer, fin: boolean): void {
    if (data.length) {
      this.push(data);
      this.conn.windowUpdate(this.id, data.length);
    }
    if (fin && !this.remoteClosed) {
      this.remoteClosed = true;
      this.push(null);
    }
  }
}

/**
 * A server-side SPDY/3.1 connection on an upgraded socket. Emits `stream` (SpdyStream) for each stream the client
 * opens, after replying to it; `close` once the socket is gone.
 */
export class SpdyConnection extends EventEmitter {
  private buf: Buffer = Buffer.alloc(0);
  private readonly streams = new Map<number, SpdyStream>();
  private readonly inflater = new Inflater();
  private readonly deflater = new StoredDeflater();
  private closed = false;
  /** Streams we open (a client's): odd ids. */
  private nextId = 1;
  private readonly replies = new Map<number, () => void>();

  constructor(private readonly socket: Socket | Duplex) {
    super();
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.shutdown());
    socket.on('error', () => this.shutdown());
    socket.on('end', () => this.shutdown());
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) {
      if (!s.remoteClosed) s.receive(Buffer.alloc(0), true);
      s.destroy();
    }
    this.streams.clear();
    this.socket.destroy();
    this.emit('close');
  }

  /** Say goodbye and close the socket once what was written has gone out. */
  close(): void {
    if (this.closed) return;
    const body = Buffer.alloc(8);
    body.writeUInt32BE(0, 0);
    body.writeUInt32BE(0, 4);
    this.control(Type.GoAway, 0, body);
    (this.socket as Duplex).end(() => this.shutdown());
    setTimeout(() => this.shutdown(), 1000).unref();
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4) & 0xffffff;
      if (this.buf.length < 8 + len) return;
      const head = this.buf.subarray(0, 8);
      const body = this.buf.subarray(8, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      try {
        this.onFrame(head, body);
      } catch {
        // A frame we cannot make sense of: the connection cannot go on in step with the peer.
        this.shutdown();
        return;
      }
    }
  }

  private onFrame(head: Buffer, body: Buffer): void {
    const flags = head[4];
    if (!(head[0] & 0x80)) {
      const id = head.readUInt32BE(0) & 0x7fffffff;
      this.streams.get(id)?.receive(Buffer.from(body), (flags & FLAG_FIN) !== 0);
      return;
    }
    const type = head.readUInt16BE(2);
    switch (type) {
      case Type.SynStream: {
        const id = body.readUInt32BE(0) & 0x7fffffff;
        const headers = decodeHeaders(this.inflater.block(body.subarray(10)));
        const s = new SpdyStream(this, id, headers);
        this.streams.set(id, s);
        s.on('close', () => this.streams.delete(id));
        // SYN_REPLY with no headers: the client waits for it before using the stream.
        const reply = Buffer.concat([u32(id), this.deflater.block(encodeHeaders({}))]);
        this.control(Type.SynReply, 0, reply);
        if (flags & FLAG_FIN) s.receive(Buffer.alloc(0), true);
        this.emit('stream', s);
        return;
      }
      case Type.SynReply: {
        this.inflater.block(body.subarray(4));
        const id = body.readUInt32BE(0) & 0x7fffffff;
        this.replies.get(id)?.();
        this.replies.delete(id);
        return;
      }
      case Type.Headers:
        // Keep the inflater in step even though these carry nothing we use.
        this.inflater.block(body.subarray(4));
        return;
      case Type.RstStream: {
        const id = body.readUInt32BE(0) & 0x7fffffff;
        const s = this.streams.get(id);
        if (s) {
          s.receive(Buffer.alloc(0), true);
          s.destroy();
        }
        return;
      }
      case Type.Ping:
        this.control(Type.Ping, 0, Buffer.from(body));
        return;
      case Type.GoAway:
        this.shutdown();
        return;
      default:
        // SETTINGS and WINDOW_UPDATE: nothing to do (see the header comment).
        return;
    }
  }

  /** Open a stream as a client does; resolves once the server replied. */
  openStream(headers: Record<string, string>): Promise<SpdyStream> {
    const id = this.nextId;
    this.nextId += 2;
    const st = new SpdyStream(this, id, headers);
    this.streams.set(id, st);
    st.on('close', () => this.streams.delete(id));
    const body = Buffer.concat([u32(id), u32(0), Buffer.from([0, 0]), this.deflater.block(encodeHeaders(headers))]);
    const replied = new Promise<SpdyStream>((resolve) => this.replies.set(id, () => resolve(st)));
    this.control(Type.SynStream, 0, body);
    return replied;
  }

  private write(b: Buffer): void {
    if (!this.closed) this.socket.write(b);
  }

  private control(type: Type, flags: number, body: Buffer): void {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(0x8000 | VERSION, 0);
    h.writeUInt16BE(type, 2);
    h.writeUInt32BE(((flags & 0xff) << 24) | body.length, 4);
    this.write(Buffer.concat([h, body]));
  }

  sendData(id: number, data: Buffer, fin: boolean): void {
    for (let o = 0; o < data.length || (data.length === 0 && o === 0); o += MAX_DATA) {
      const chunk = data.subarray(o, o + MAX_DATA);
      const last = o + MAX_DATA >= data.length;
      const h = Buffer.alloc(8);
      h.writeUInt32BE(id & 0x7fffffff, 0);
      h.writeUInt32BE((((fin && last ? FLAG_FIN : 0) & 0xff) << 24) | chunk.length, 4);
      this.write(Buffer.concat([h, chunk]));
      if (data.length === 0) break;
    }
  }

  windowUpdate(id: number, delta: number): void {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(id & 0x7fffffff, 0);
    b.writeUInt32BE(delta & 0x7fffffff, 4);
    this.control(Type.WindowUpdate, 0, b);
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
