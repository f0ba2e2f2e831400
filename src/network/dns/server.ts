// One DNS server per network, inside the daemon, on the gateway address port 53 (UDP and TCP). Container names and
// aliases are answered locally; everything else is relayed verbatim to the upstream resolvers. Because the daemon
// runs in the host's namespace, a loopback upstream such as 127.0.0.53 works too.

import dgram from 'node:dgram';
import net from 'node:net';
import { decide, errorReply, type Lookup } from './answer.js';
import type { Logger } from '../../common/log.js';

export interface DnsServerOptions {
  address: string;
  port?: number;
  /** Names as the asker sees them: `from` is the querying address, so a container on several networks sees all. */
  lookup: (name: string, from?: string) => string[] | undefined;
  /** "ip" or "ip:port"; empty = answer SERVFAIL to anything not local. */
  upstreams: () => string[];
  /** false for internal networks: their names resolve but nothing is forwarded outside. */
  forward: boolean;
  log?: Logger;
}

const FORWARD_TIMEOUT_MS = 2000;

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return i > 0 ? { host: s.slice(0, i), port: Number(s.slice(i + 1)) } : { host: s, port: 53 };
}

/** Sends the query to each upstream in turn from a fresh socket (so replies cannot be confused), first answer wins. */
async function forwardUdp(query: Buffer, upstreams: string[]): Promise<Buffer | undefined> {
  for (const u of upstreams) {
    const { host, port } = splitHostPort(u);
    const reply = await new Promise<Buffer | undefined>((resolve) => {
      const sock = dgram.createSocket('udp4');
      const done = (b: Buffer | undefined) => {
        clearTimeout(timer);
        sock.close();
        resolve(b);
      };
      const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS);
      sock.on('error', () => done(undefined));
      sock.on('message', (msg) => {
        if (msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0)) done(msg);
      });
      sock.send(query, port, host, (err) => err && done(undefined));
    });
    if (reply) return reply;
  }
  return undefined;
}

export class DnsServer {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly o: DnsServerOptions) {}

  get address(): string {
    return this.o.address;
  }

  async start(): Promise<void> {
    const port = this.o.port ?? 53;
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      void this.handle(msg, rinfo.address).then((reply) => {
        if (reply) udp.send(reply, rinfo.port, rinfo.address);
      });
    });
    udp.on('error', (e) => this.o.log?.warn({ address: this.o.address, err: e.message }, 'dns server (udp) failed'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: this.o.address, port }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udp = udp;
    const tcp = net.createServer((c) => this.serveTcp(c));
    tcp.on('error', (e) => this.o.log?.warn({ address: this.o.address, err: e.message }, 'dns server (tcp) failed'));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: this.o.address, port }, () => {
        tcp.off('error', reject);
        resolve();
      });
    }).catch((e: Error) => this.o.log?.warn({ address: this.o.address, err: e.message }, 'dns over tcp unavailable: answering over udp only'));
    if (tcp.listening) this.tcp = tcp;
  }

  async handle(query: Buffer, from?: string): Promise<Buffer | undefined> {
    const d = decide(query, (name) => this.o.lookup(name, from));
    if (d.kind === 'answer') return d.reply;
    if (d.kind === 'drop') return undefined;
    if (!this.o.forward) return errorReply(query, 'REFUSED');
    const ups = this.o.upstreams().filter((u) => splitHostPort(u).host !== this.o.address);
    return (await forwardUdp(query, ups)) ?? errorReply(query, 'SERVFAIL');
  }

  /** DNS over TCP: 2-byte length-prefixed messages; each is answered like a UDP one. */
  private serveTcp(c: net.Socket): void {
    let buf = Buffer.alloc(0);
    this.conns.add(c);
    c.on('close', () => this.conns.delete(c));
    c.setTimeout(10_000, () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void this.handle(Buffer.from(msg), c.remoteAddress?.replace(/^::ffff:/, '')).then((reply) => {
          if (!reply || c.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          c.write(Buffer.concat([len, reply]));
        });
      }
    });
  }

  async stop(): Promise<void> {
    const u = this.udp;
    const t = this.tcp;
    this.udp = this.tcp = undefined;
    if (u) await new Promise<void>((r) => u.close(() => r()));
    for (const c of this.conns) c.destroy();
    if (t) await new Promise<void>((r) => t.close(() => r()));
  }
}
