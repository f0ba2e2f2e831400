// `POST /v1/systems/run` (an upgrade): create, attach, start and wait in one request, so `silo run` makes one round
// trip. The body is the create specification. Until the start succeeded the answer is an ordinary HTTP error (nothing
// was streamed yet); then a 101 names the system (X-Silo-System) and the connection carries stdin one way and framed
// output the other (8-byte headers as the multiplexed stream, a tty's bytes as stream 1), ending with one frame of
// stream 3 holding {"ExitCode": n}. With AutoRemove that frame follows the removal, as a wait does.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { invalid } from '../../common/errors.js';
import type { ComputeService } from '../../compute/service.js';
import type { StdioClient, StdioSession } from '../../compute/sessions.js';
import type { CreateSystemRequest } from '../../compute/types.js';

const MAX_BODY = 4 * 1024 * 1024;
export const RUN_STREAM = 'application/vnd.silo.run-stream';

function framed(stream: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(data.length, 4);
  return Buffer.concat([h, data]);
}

/** The request's body (Content-Length bytes) off the hijacked socket; bytes after it (stdin) are put back. */
function readBody(socket: Duplex, length: number): Promise<Buffer> {
  if (!Number.isInteger(length) || length < 0) return Promise.reject(invalid('the run request needs a Content-Length'));
  if (length > MAX_BODY) return Promise.reject(invalid(`the create specification is larger than ${MAX_BODY} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (e?: Error) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (e) return reject(e);
      const all = Buffer.concat(chunks);
      if (all.length > length) socket.unshift(all.subarray(length));
      resolve(all.subarray(0, length));
    };
    const onData = (b: Buffer) => {
      chunks.push(b);
      got += b.length;
      if (got >= length) done();
    };
    const onEnd = () => done(invalid('the run request ended before its body'));
    if (length === 0) return resolve(Buffer.alloc(0));
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.resume();
  });
}

export async function serveRun(c: ComputeService, req: IncomingMessage, socket: Duplex, stdin: boolean): Promise<void> {
  const raw = await readBody(socket, Number(req.headers['content-length'] ?? 0));
  let spec: CreateSystemRequest;
  try {
    spec = JSON.parse(raw.toString('utf8')) as CreateSystemRequest;
  } catch (e) {
    throw invalid(`invalid JSON body: ${(e as Error).message}`);
  }
  const rec = await c.create(spec);
  const id = rec.Id;
  // Output before the 101 is held; the end of the output is when the exit code may be sent.
  const held: Buffer[] = [];
  let live = false;
  const send = (b: Buffer) => {
    if (socket.writableEnded || socket.destroyed) return;
    if (live) socket.write(b);
    else held.push(b);
  };
  let outputEnded!: () => void;
  const ended = new Promise<void>((r) => (outputEnded = r));
  const client: StdioClient = { wantStdin: stdin && rec.Init.Stdin, onOutput: (s, d) => send(framed(s, d)), onEnd: () => outputEnded() };
  // Asked before the start, so an AutoRemove'd system cannot be gone before its exit code is known.
  const exited = c.wait(id, 'next-exit');
  let session: StdioSession | undefined;
  try {
    session = await c.attach(id, client);
    await c.start(id);
  } catch (e) {
    session?.detach();
    // A failed start of an --rm run leaves nothing (the compute service removed it; this is for a failed attach).
    if (rec.Document.AutoRemove) await c.remove(id, { force: true }).catch(() => {});
    throw e;
  }
  const s = session;
  socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${RUN_STREAM}\r\nX-Silo-System: ${id}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
  live = true;
  for (const b of held.splice(0)) socket.write(b);
  socket.on('data', (b: Buffer) => s.writeStdin(b));
  socket.on('end', () => s.closeStdin());
  socket.on('close', () => s.detach());
  socket.on('error', () => s.detach());
  socket.resume();
  await ended;
  const code = await exited;
  if (!socket.destroyed && !socket.writableEnded) socket.end(framed(3, Buffer.from(JSON.stringify({ ExitCode: code }))));
}
