// Hijacked streams: attach to a system's init process, or start an exec with its stdio.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { invalid, notFound } from '../../common/errors.js';
import type { StdioSession } from '../../compute/sessions.js';
import type { Services } from '../../host/services.js';
import { heldClient, socketClient, upgraded } from './stream.js';
import { serveRun } from './run.js';

/** A path segment as the client meant it; a malformed escape (`%zz`) is the client's error, not a 500. */
export function decodeParam(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw invalid(`malformed escape in the path: ${seg.slice(0, 64)}`);
  }
}

export function upgradeRoutes(svc: Services) {
  const c = svc.compute;
  return async (req: IncomingMessage, socket: Duplex): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://silo');
    const q = url.searchParams;
    let m: RegExpMatchArray | null;
    let session: StdioSession | undefined;
    if (req.method === 'POST' && url.pathname === '/v1/systems/run') {
      return serveRun(c, req, socket, q.get('stdin') === '1' || q.get('stdin') === 'true');
    } else if (req.method === 'POST' && (m = url.pathname.match(/^\/v1\/systems\/([^/]+)\/attach$/))) {
      const rec = c.get(decodeParam(m[1]));
      const wantStdin = (q.get('stdin') === '1' || q.get('stdin') === 'true') && rec.Init.Stdin;
      upgraded(socket, rec.Init.Tty ? 'application/vnd.silo.raw-stream' : 'application/vnd.silo.multiplexed-stream');
      session = await c.attach(rec.Id, socketClient(socket, rec.Init.Tty, wantStdin));
    } else if (req.method === 'POST' && (m = url.pathname.match(/^\/v1\/processes\/([^/]+)\/start$/))) {
      const x = c.execs.get(decodeParam(m[1]));
      const tty = x.Process.EmulateConsole ?? false;
      // Started before the 101 so that a failure is an HTTP error; its output waits for the 101.
      const client = heldClient(socketClient(socket, tty, x.Process.CreateStdInPipe ?? false));
      session = await c.execs.start(x.Id, client);
      upgraded(socket, tty ? 'application/vnd.silo.raw-stream' : 'application/vnd.silo.multiplexed-stream');
      client.open();
    } else {
      throw notFound('route', `${req.method} ${url.pathname}`);
    }
    const s = session!;
    socket.on('data', (b: Buffer) => s.writeStdin(b));
    socket.on('end', () => s.closeStdin());
    socket.on('close', () => s.detach());
    socket.on('error', () => s.detach());
  };
}
