// Stdio over a hijacked connection: raw bytes with a tty, else docker's 8-byte frame header per chunk.

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
  socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
}

export function writeHttpError(socket: Duplex, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
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
