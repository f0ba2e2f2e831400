// An attached process' session: start it, then tty/raw mode, resize, stdin, signals and output until it ends.

import type { Duplex } from 'node:stream';
import { forwardStdin, proxySignals, pumpOutput, rawTerminal, trackResize } from '../stream.js';

export interface SessionOptions {
  socket: Duplex;
  tty: boolean;
  /** Forward our stdin (-i). */
  stdin: boolean;
  /** Start the process once attached (a rejection ends the session before anything else). */
  start?: () => Promise<void>;
  resize?: (rows: number, cols: number) => Promise<unknown>;
  /** sig-proxy (only used without a tty). */
  signal?: (signal: string) => Promise<unknown>;
  /** The stream is framed even with a tty; stream 3's frames go here (the run stream's exit code). */
  control?: (data: Buffer) => void;
}

/** Resolves when the process' output has ended. */
export async function runSession(o: SessionOptions): Promise<void> {
  const done = pumpOutput(o.socket, o.tty, o.control);
  if (o.start) {
    try {
      await o.start();
    } catch (e) {
      o.socket.destroy();
      throw e;
    }
  }
  const restore = o.tty && o.stdin ? await rawTerminal() : () => {};
  try {
    if (o.tty && o.resize) trackResize(o.resize);
    if (!o.tty && o.signal) proxySignals(o.signal);
    if (o.stdin) forwardStdin(o.socket);
    await done;
  } finally {
    restore();
  }
}
