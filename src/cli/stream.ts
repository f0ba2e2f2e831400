// The stdio of an attached process: frame demuxing (pure), output pumping, stdin forwarding, raw tty.

import type { Duplex, Readable } from 'node:stream';

/**
 * Splits the framed stream (8-byte header `[stream,0,0,0,size u32 BE]` then `size` bytes) into frames, whatever
 * the chunk boundaries. `pending()` is how many bytes of an unfinished frame are held.
 */
export function createDemuxer(onFrame: (stream: number, data: Buffer) => void): { push(chunk: Buffer): void; pending(): number } {
  let buf: Buffer = Buffer.alloc(0);
  return {
    push(chunk: Buffer) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let off = 0;
      while (buf.length - off >= 8) {
        const size = buf.readUInt32BE(off + 4);
        if (buf.length - off - 8 < size) break;
        const stream = buf[off];
        const data = buf.subarray(off + 8, off + 8 + size);
        off += 8 + size;
        if (size) onFrame(stream, data);
      }
      buf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    },
    pending: () => buf.length,
  };
}

/**
 * Copy a process' output to our stdout/stderr (demuxed unless tty), honouring back-pressure. Resolves at its end.
 * `control`: the stream is framed whatever the tty, and frames of stream 3 (the run stream's exit code) go there.
 */
export function pumpOutput(src: Readable, tty: boolean, control?: (data: Buffer) => void): Promise<void> {
  return new Promise((resolve) => {
    const write = (stream: number, data: Buffer) => {
      if (stream === 3 && control) return control(data);
      const out = stream === 2 ? process.stderr : process.stdout;
      if (!out.write(data)) {
        src.pause();
        out.once('drain', () => src.resume());
      }
    };
    const demux = tty && !control ? undefined : createDemuxer(write);
    src.on('data', (c: Buffer) => (demux ? demux.push(c) : write(1, c)));
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
    src.on('end', finish);
    src.on('close', finish);
    src.on('error', finish);
  });
}

/** Forward our stdin to the socket; our EOF half-closes it (the process sees EOF on its stdin). */
export function forwardStdin(socket: Duplex): void {
  process.stdin.on('data', (c: Buffer) => {
    if (!socket.destroyed && !socket.writableEnded && !socket.write(c)) {
      process.stdin.pause();
      socket.once('drain', () => process.stdin.resume());
    }
  });
  process.stdin.on('end', () => {
    if (!socket.destroyed && !socket.writableEnded) socket.end();
  });
  process.stdin.on('error', () => {});
  socket.on('error', () => {});
  process.stdin.resume();
}

/** Put the local terminal in raw mode when it is one; returns the function that restores it (idempotent). */
export async function rawTerminal(): Promise<() => void> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return () => {};
  const { spawnSync } = await import('node:child_process'); // only interactive sessions pay for it
  stdin.setRawMode(true);
  // libuv's raw mode keeps ONLCR: the container's tty already did that translation, so turn output processing off
  // (setRawMode(false) restores the termios saved before).
  spawnSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    try {
      stdin.setRawMode(false);
    } catch {
      /* closed */
    }
  };
  process.on('exit', restore);
  // Without sig-proxy (tty) these would kill us with the terminal left raw.
  for (const [sig, n] of [['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.once(sig, () => {
      restore();
      process.exit(128 + n);
    });
  }
  return restore;
}

/** [rows, cols] of our terminal, if stdout is one. */
export function terminalSize(): [number, number] | undefined {
  const o = process.stdout;
  return o.isTTY && o.rows && o.columns ? [o.rows, o.columns] : undefined;
}

/** Send the terminal size now and whenever it changes (SIGWINCH). */
export function trackResize(send: (rows: number, cols: number) => Promise<unknown>): void {
  const push = () => {
    const s = terminalSize();
    if (s) send(s[0], s[1]).catch(() => {});
  };
  push();
  if (process.stdout.isTTY) process.stdout.on('resize', push);
}

/** Docker's sig-proxy: SIGINT/SIGTERM (and SIGHUP, SIGQUIT, SIGUSR1/2) we receive go to the container. */
export function proxySignals(send: (signal: string) => Promise<unknown>): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
    process.on(sig, () => void send(sig).catch(() => {}));
  }
}
