// The CLI's HTTP/1.1 over the daemon's unix socket with node:net alone: one request per connection, the answer's head
// parsed here, its body read by Content-Length, chunks or the connection's end. node:http cost ≈10 ms of CPU at each
// `silo run` (its modules, an Agent per request, and the Agent compiling Node's IPv6 regex for a server name).

import { connect, type Socket } from 'node:net';

export interface Answer {
  status: number;
  /** The status line's reason phrase ("Not Found"). */
  reason: string;
  /** Lower-case names; a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  socket: Socket;
  /** Bytes read past the head. */
  rest: Buffer;
}

const MAX_HEAD = 64 * 1024;

/**
 * Send a request and resolve with the answer's head, the socket paused with the bytes after the head in `rest`.
 * Rejects with the socket's error (errno code kept: ENOENT, ECONNREFUSED, EACCES...) or a malformed answer.
 */
export function exchange(socketPath: string, method: string, path: string, headers: Record<string, string | number>, payload?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries({ Host: 'localhost', ...headers })) head += `${k}: ${v}\r\n`;
    head += '\r\n';
    // One write: the daemon reads the request in one piece.
    socket.write(payload?.length ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : Buffer.from(head, 'latin1'));
    let buf: Buffer = Buffer.alloc(0);
    const fail = (e: Error) => {
      done();
      socket.destroy();
      reject(e);
    };
    const onEnd = () => fail(new Error('the daemon closed the connection before answering'));
    const onData = (c: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) {
        if (buf.length > MAX_HEAD) fail(new Error("the daemon's answer has no end of head"));
        return;
      }
      const lines = buf.toString('latin1', 0, i).split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]);
      if (!m) return fail(new Error(`malformed answer from the daemon: ${JSON.stringify(lines[0].slice(0, 80))}`));
      const h: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        if (c <= 0) continue;
        const k = l.slice(0, c).trim().toLowerCase();
        const v = l.slice(c + 1).trim();
        h[k] = k in h ? `${h[k]}, ${v}` : v;
      }
      done();
      // Paused, and back to the state where a new 'data' listener starts the flow (what node:http does on upgrade).
      socket.pause();
      (socket as { readableFlowing: boolean | null }).readableFlowing = null;
      resolve({ status: Number(m[1]), reason: m[2], headers: h, socket, rest: buf.subarray(i + 4) });
    };
    const done = () => {
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('end', onEnd);
    };
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('end', onEnd);
  });
}

/** The answer's whole body (Content-Length, chunked, or up to the end); the socket is destroyed after. */
export function readBody(a: Answer, method: string): Promise<Buffer> {
  const { socket, headers, status } = a;
  const chunked = /\bchunked\b/i.test(headers['transfer-encoding'] ?? '');
  const length = headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
  if (method === 'HEAD' || status === 204 || status === 304 || (!chunked && length === 0)) {
    socket.destroy();
    return Promise.resolve(Buffer.alloc(0));
  }
  return new Promise((resolve, reject) => {
    let buf = a.rest;
    const finish = (b: Buffer) => {
      socket.removeAllListeners('data');
      socket.destroy();
      resolve(b);
    };
    const check = () => {
      try {
        const body = chunked ? dechunk(buf) : length !== undefined && buf.length >= length ? buf.subarray(0, length) : undefined;
        if (body) finish(body);
      } catch (e) {
        socket.destroy();
        reject(e);
      }
    };
    socket.on('data', (c: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      check();
    });
    socket.on('end', () => {
      if (!chunked && length === undefined) finish(buf);
      else reject(new Error('the daemon closed the connection in the middle of an answer'));
    });
    socket.on('error', reject);
    check();
  });
}

/** A chunked body's data once its last (empty) chunk is in `b`; undefined while more is to come. */
export function dechunk(b: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', off);
    if (eol < 0) return undefined;
    const size = parseInt(b.toString('latin1', off, eol).split(';')[0], 16);
    if (!Number.isFinite(size)) throw new Error('malformed chunked answer from the daemon');
    // The last chunk, then trailers (none, usually) and an empty line.
    if (size === 0) return b.indexOf('\r\n\r\n', eol) >= 0 ? Buffer.concat(parts) : undefined;
    if (b.length < eol + 2 + size + 2) return undefined;
    parts.push(b.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}
