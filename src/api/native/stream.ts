// Stdio over a hijacked connection: raw bytes with a tty, else docker's 8-byte frame header per chunk.

import type { FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { StdioClient } from '../../compute/sessions.js';

export function frame(stream: 1 | 2, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

/** Answer an upgrade request with 101 and hand back the socket as the process' stdio. */
export function upgraded(socket: Duplex, contentType: string): void {
  socket.write(upgradeHead(contentType));
}

export const upgradeHead = (contentType: string) => `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`;

export function writeHttpError(socket: Duplex, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
}

/**
 * A StdioClient whose output waits until `open()`: a process can print before the call that started it returns
 * (a utility VM's agent answers with its first output in the same read), and nothing may reach the socket before the
 * 101 does. Until then a failure can still be an HTTP error.
 */
export function heldClient(inner: StdioClient): StdioClient & { open(): void } {
  let held: (() => void)[] | undefined = [];
  const later = (f: () => void) => (held ? held.push(f) : f());
  return {
    wantStdin: inner.wantStdin,
    onOutput: (stream, data) => later(() => inner.onOutput(stream, data)),
    onEnd: () => later(() => inner.onEnd()),
    open() {
      const q = held ?? [];
      held = undefined;
      for (const f of q) f();
    },
  };
}

/** A StdioClient writing to a socket; `tty` selects raw or framed output. */
export function socketClient(socket: Duplex, tty: boolean, wantStdin: boolean): StdioClient {
  return {
    wantStdin,
    onOutput(stream, data) {
      if (!socket.writableEnded) socket.write(tty ? data : frame(stream, data));
    },
    onEnd() {
      if (!socket.writableEnded) socket.end();
    },
  };
}

/**
 * Serve upgrade requests on `app`'s server. A hijacked stream is no longer one of the HTTP server's connections, so
 * close() would wait on it for as long as the client stays attached (forever for a stream with no output): the
 * daemon ends them itself when it stops.
 */
export function serveUpgrades(app: FastifyInstance, handle: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): void {
  const hijacked = new Set<Duplex>();
  app.addHook('preClose', async () => {
    for (const s of hijacked) s.destroy();
  });
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    hijacked.add(socket);
    socket.once('close', () => hijacked.delete(socket));
    handle(req, socket, head);
  });
}

/** Resolves when the response can take more (drain), or it closed, or the request was given up. */
export function drained(res: NodeJS.WritableStream & { once: (ev: string, f: () => void) => unknown; off: (ev: string, f: () => void) => unknown }, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
    signal.addEventListener('abort', done);
  });
}
