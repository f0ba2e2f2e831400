// A minimal QMP client (QEMU's JSON monitor on a unix socket): one command at a time, answers in order.

import { connect, type Socket } from 'node:net';
import { SiloError } from '../../common/errors.js';

export class Qmp {
  private buf = '';
  private readonly waiting: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private readonly events: { name: string; cb: (data: unknown) => void }[] = [];
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => this.onData(s));
    const gone = () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w.reject(new SiloError('Unavailable', 'SILO_VM_GONE', 'QEMU closed its monitor'));
    };
    sock.on('close', gone);
    sock.on('error', gone);
  }

  static async open(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const q = new Qmp(sock);
        // The greeting and the capabilities' answer in one round trip: QEMU reads the command after its greeting.
        await Promise.all([q.next(), q.execute('qmp_capabilities')]);
        return q;
      } catch (e) {
        if (Date.now() >= deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private next(): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private onData(s: string): void {
    this.buf += s;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).trim();
      this.buf = this.buf.slice(i + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (typeof msg.event === 'string') {
        for (const e of this.events) if (e.name === msg.event) e.cb(msg.data);
        continue;
      }
      const w = this.waiting.shift();
      if (!w) continue;
      if (msg.error) {
        const err = msg.error as { desc?: string };
        w.reject(new SiloError('Internal', 'SILO_VM_QMP', `QEMU: ${err.desc ?? 'error'}`));
      } else w.resolve(msg.return ?? msg.QMP);
    }
  }

  /** Resolves when QEMU closes its monitor (it exited). */
  gone(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) resolve();
      else this.sock.once('close', () => resolve());
    });
  }

  onEvent(name: string, cb: (data: unknown) => void): void {
    this.events.push({ name, cb });
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new SiloError('Unavailable', 'SILO_VM_GONE', 'QEMU is not running'));
    const p = this.next() as Promise<T>;
    this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    return p;
  }

  close(): void {
    this.sock.destroy();
  }
}
