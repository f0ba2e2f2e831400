// The host end of the guest agent's control port (a virtio-serial port QEMU exposes as a unix socket). Frames are
// `u32 len | u8 op | u32 proc | u32 seq | payload` (little-endian, len counts from op); see docs/vm.md. A stream may
// start with bytes of an earlier connection's frames, so a connection begins with HELLO + a random nonce and ignores
// everything before the READY that echoes it.

import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { SiloError } from '../../common/errors.js';

export const Op = {
  HELLO: 1, IDENTITY: 2, ROOT: 3, FILE: 4, NET: 5, CREATE: 6, START: 7, STDIN: 8, SIGNAL: 9, RESIZE: 10,
  STATS: 11, PS: 12, POWEROFF: 13, READFILE: 14, DESTROY: 15, FS: 16, FWRITE: 17, LOGROTATED: 18, JITFILL: 19,
  READY: 64, OUT: 65, ERR: 66, EXIT: 67, REPLY: 68, ERROR: 69, LOGFULL: 70,
} as const;

const HEADER = 13;
const MAX_FRAME = 1 << 20;

export function encodeFrame(op: number, proc: number, seq: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(HEADER + payload.length);
  b.writeUInt32LE(payload.length + 9, 0);
  b.writeUInt8(op, 4);
  b.writeUInt32LE(proc >>> 0, 5);
  b.writeUInt32LE(seq >>> 0, 9);
  payload.copy(b, HEADER);
  return b;
}

/** "key=value" strings, each NUL-terminated (a key may repeat: arg, env, layer). */
export function encodeStrings(pairs: [string, string | number][]): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of pairs) {
    const s = `${k}=${v}`;
    if (s.includes('\0')) throw new SiloError('InvalidArgument', 'SILO_INVALID', `${k} must not contain a NUL byte`);
    parts.push(Buffer.from(s + '\0'));
  }
  return Buffer.concat(parts);
}

export function decodeStrings(b: Buffer): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of b.toString('utf8').split('\0')) {
    if (!s) continue;
    const i = s.indexOf('=');
    m.set(i < 0 ? s : s.slice(0, i), i < 0 ? '' : s.slice(i + 1));
  }
  return m;
}

export function decodeList(b: Buffer): string[] {
  return b.toString('utf8').split('\0').filter(Boolean);
}

/** Splits a byte stream into frames; keeps the unfinished rest. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, onFrame: (op: number, proc: number, seq: number, payload: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32LE(off);
      if (len < 9 || len > MAX_FRAME + 64) throw new Error(`bad frame length ${len}`);
      if (this.buf.length - off < 4 + len) break;
      onFrame(this.buf.readUInt8(off + 4), this.buf.readUInt32LE(off + 5), this.buf.readUInt32LE(off + 9), this.buf.subarray(off + HEADER, off + 4 + len));
      off += 4 + len;
    }
    this.buf = this.buf.subarray(off);
  }
}

export interface ProcessEvents {
  onOut(stream: 1 | 2, data: Buffer): void;
  onExit(code: number, oom: boolean): void;
}

export class AgentChannel {
  private seq = 1;
  private readonly pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private readonly procs = new Map<number, Set<ProcessEvents>>();
  private closed = false;
  private readonly closeCbs: (() => void)[] = [];
  /** LOGFULL of containers (by id) heard before anyone listened: the agent says it right after READY. */
  private logFullHeard = new Set<number>();
  private logFullCb?: (ctr: number) => void;

  private constructor(private readonly sock: Socket) {}

  /** Connect and handshake; retries while the socket is not there yet (QEMU starting). `signal` gives up at once
   *  (the port takes one connection: a stale attempt must not take a later QEMU's). */
  static async open(path: string, timeoutMs: number, signal?: AbortSignal): Promise<AgentChannel> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        signal?.throwIfAborted();
        return await AgentChannel.tryOpen(path, Math.max(100, deadline - Date.now()), signal);
      } catch (e) {
        if (Date.now() >= deadline || signal?.aborted) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private static tryOpen(path: string, timeoutMs: number, signal?: AbortSignal): Promise<AgentChannel> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const nonce = randomBytes(8);
      const needle = Buffer.concat([Buffer.from([Op.READY]), Buffer.alloc(8), nonce]);
      let pre = Buffer.alloc(0);
      let timer: NodeJS.Timeout | undefined;
      let hello: NodeJS.Timeout | undefined;
      const abort = () => done(new Error('aborted'));
      const done = (e?: Error) => {
        clearTimeout(timer);
        clearInterval(hello);
        signal?.removeEventListener('abort', abort);
        sock.off('data', onData);
        if (e) {
          sock.destroy();
          reject(e);
        }
      };
      const onData = (chunk: Buffer) => {
        pre = Buffer.concat([pre, chunk]);
        // READY frame: len(4) op(1) proc(4)=0 seq(4)=0 nonce(8); look for op..nonce with proc=0 seq=0.
        const at = pre.indexOf(needle);
        if (at < 4) {
          if (pre.length > 4 << 20) pre = pre.subarray(pre.length - 64);
          return;
        }
        done();
        const ch = new AgentChannel(sock);
        ch.attachReader(pre.subarray(at - 4 + 4 + 17));
        resolve(ch);
      };
      sock.on('data', onData);
      sock.once('error', (e) => done(e));
      sock.once('connect', () => {
        const send = () => sock.write(encodeFrame(Op.HELLO, 0, 0, nonce));
        send();
        // The agent may still be booting (or the port just reconnected): say hello again until it answers.
        hello = setInterval(send, 200);
      });
      timer = setTimeout(() => done(new Error('the guest agent did not answer')), timeoutMs);
      signal?.addEventListener('abort', abort);
    });
  }

  private attachReader(rest: Buffer): void {
    const reader = new FrameReader();
    const onFrame = (op: number, proc: number, seq: number, payload: Buffer) => this.dispatch(op, proc, seq, payload);
    this.sock.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, onFrame);
      } catch (e) {
        this.sock.destroy(e as Error);
      }
    });
    this.sock.on('close', () => this.shut());
    this.sock.on('error', () => this.shut());
    if (rest.length) reader.push(rest, onFrame);
  }

  private shut(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new SiloError('Unavailable', 'SILO_VM_GONE', 'the utility VM closed its control channel'));
    this.pending.clear();
    for (const cb of this.closeCbs) cb();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(cb: () => void): void {
    if (this.closed) cb();
    else this.closeCbs.push(cb);
  }

  private dispatch(op: number, proc: number, seq: number, payload: Buffer): void {
    if (op === Op.REPLY || op === Op.ERROR) {
      const p = this.pending.get(seq);
      if (!p) return;
      this.pending.delete(seq);
      if (op === Op.REPLY) p.resolve(Buffer.from(payload));
      else p.reject(new SiloError('Internal', 'SILO_VM_AGENT', payload.toString('utf8')));
    } else if (op === Op.OUT || op === Op.ERR) {
      const data = Buffer.from(payload);
      for (const l of this.procs.get(proc) ?? []) l.onOut(op === Op.OUT ? 1 : 2, data);
    } else if (op === Op.LOGFULL) {
      if (this.logFullCb) this.logFullCb(proc);
      else this.logFullHeard.add(proc);
    } else if (op === Op.EXIT) {
      const m = decodeStrings(payload);
      for (const l of this.procs.get(proc) ?? []) l.onExit(Number(m.get('code') ?? 255), m.get('oom') === '1');
    }
  }

  /** A container's log reached its cap and its output is held until the host rotates the log (Op.LOGROTATED). */
  onLogFull(cb: (ctr: number) => void): void {
    this.logFullCb = cb;
    for (const c of this.logFullHeard) cb(c);
    this.logFullHeard.clear();
  }

  /** Listen to a process' output and exit. Returns the unsubscribe function. */
  listen(proc: number, l: ProcessEvents): () => void {
    const set = this.procs.get(proc) ?? new Set();
    this.procs.set(proc, set);
    set.add(l);
    return () => {
      set.delete(l);
      if (set.size === 0) this.procs.delete(proc);
    };
  }

  request(op: number, proc: number, payload?: Buffer, timeoutMs = 30_000): Promise<Buffer> {
    if (this.closed) return Promise.reject(new SiloError('Unavailable', 'SILO_VM_GONE', 'the utility VM is not running'));
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(seq);
        reject(new SiloError('Unavailable', 'SILO_VM_TIMEOUT', `the guest agent did not answer operation ${op} in ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(seq, {
        resolve: (b) => (clearTimeout(t), resolve(b)),
        reject: (e) => (clearTimeout(t), reject(e)),
      });
      this.sock.write(encodeFrame(op, proc, seq, payload));
    });
  }

  /** Fire and forget (stdin). */
  send(op: number, proc: number, payload?: Buffer): void {
    if (!this.closed) this.sock.write(encodeFrame(op, proc, 0, payload));
  }

  close(): void {
    this.sock.destroy();
    this.shut();
  }
}
