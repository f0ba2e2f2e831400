// A front door that listens from the daemon's start but loads its server (fastify and its routes, or gRPC) only when
// a client first talks to it: a daemon that only ever serves the native API never holds the Docker API's or the CRI's
// code in memory. The listening socket is a plain net.Server; each accepted connection is handed, unread, to the
// loaded server, which then owns it as if it had accepted it itself.

import { chmod, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';

export interface DoorServer {
  /** Take over an accepted connection (its first bytes may be back in its read buffer). */
  accept(socket: Socket): void;
  close(): Promise<void>;
}

export interface LazyDoor {
  close(): Promise<void>;
}

/**
 * Listen on `path` (mode 0660). `trigger`: 'data' loads on the first bytes a client sends (an HTTP door: a probe that
 * connects and leaves loads nothing), 'connection' on the first connection (gRPC: its HTTP/2 session must read the
 * socket itself from the first byte). A load that fails is logged by `onError` and tried again by the next client.
 */
export async function lazyDoor(path: string, trigger: 'data' | 'connection', load: () => Promise<DoorServer>, onError: (e: unknown) => void): Promise<LazyDoor> {
  let server: Promise<DoorServer> | undefined;
  const open = new Set<Socket>();
  const hand = (s: Socket) => {
    (server ??= load()).then(
      (d) => {
        open.delete(s);
        if (!s.destroyed) d.accept(s);
        s.resume();
      },
      (e) => {
        server = undefined;
        onError(e);
        s.destroy();
      },
    );
  };
  // Half-open as Node's HTTP server accepts them: a client that shuts its write side (docker's attach after stdin) still
  // reads the rest of the answer.
  const listener = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    if (trigger === 'connection') return hand(s);
    s.once('data', (chunk) => {
      s.pause();
      s.unshift(chunk);
      hand(s);
    });
    s.resume();
  });
  await rm(path, { force: true });
  await new Promise<void>((res, rej) => {
    listener.once('error', rej);
    listener.listen(path, () => res());
  });
  await chmod(path, 0o660);
  return {
    close: async () => {
      // No new connections; those already handed over are the loaded server's to end (its close waits for none).
      listener.close();
      for (const s of open) s.destroy();
      if (server) await (await server.catch(() => undefined))?.close();
      await rm(path, { force: true });
    },
  };
}

/** A fastify app as a door: it never listens itself; the connections it is handed are its own. */
export async function fastifyDoor(app: import('fastify').FastifyInstance): Promise<DoorServer> {
  await app.ready();
  // Node's HTTP server tracks connections (request and header timeouts, closeAllConnections) from its 'listening'
  // event on; this one is told it listens, since the door's socket does.
  app.server.emit('listening');
  const open = new Set<Socket>();
  return {
    accept: (s) => {
      open.add(s);
      s.once('close', () => open.delete(s));
      app.server.emit('connection', s);
    },
    close: async () => {
      // Keep-alive clients and upgraded streams (attach, exec) would hold the close open.
      for (const s of open) s.destroy();
      await app.close();
    },
  };
}
