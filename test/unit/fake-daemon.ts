// The CLI's unit tests run the real `silo` binary against a fake daemon on a unix socket: what both files need of it
// (the socket in a temp dir, request bodies, JSON answers, the binary run against it, stream frames).

import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(resolve(fileURLToPath(import.meta.url), '../../../..'), 'bin/silo');

/** A temp dir holding the fake daemon's socket (the caller removes the dir). */
export function fakeSocket(prefix: string): { dir: string; sock: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, sock: join(dir, 'fake.sock') };
}

/** A request's body, parsed as JSON (undefined when empty). */
export const readBody = (req: IncomingMessage) =>
  new Promise<any>((res) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    let s = '';
    req.on('data', (b) => (s += b));
    req.on('end', () => res(s ? JSON.parse(s) : undefined));
  });

/** Answer with a status and, when given, a JSON body. */
export const replyJson = (res: ServerResponse) => (status: number, o?: unknown) => {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(o === undefined ? undefined : JSON.stringify(o));
};

/** The binary with SILO_HOST at the socket (env may override it); its exit code and output. */
export function runSilo(sock: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, SILO_HOST: `unix://${sock}`, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

/** One frame of a multiplexed stream: [stream, 0, 0, 0, size uint32 BE] + data. */
export function frame(stream: number, s: string): Buffer {
  const d = Buffer.from(s);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(d.length, 4);
  return Buffer.concat([h, d]);
}
