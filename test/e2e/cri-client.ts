// A TypeScript CRI client for the tests: the same .proto as the server, promises for unary calls, and the streaming
// side (SPDY/3.1 exec, attach and port-forward) as the kubelet speaks it.

import * as grpc from '@grpc/grpc-js';
import { request } from 'node:http';
import type { Readable } from 'node:stream';
import { WebSocket } from 'ws';
import { loadCriPackage } from '../../src/api/cri/server.js';
import { SpdyConnection } from '../../src/api/cri/spdy.js';

export type Call = (req?: Record<string, unknown>) => Promise<any>;

export interface CriClient {
  runtime: Record<string, Call>;
  image: Record<string, Call>;
  /** GetContainerEvents: the server stream, read until it is cancelled. */
  events(): grpc.ClientReadableStream<any>;
  close(): void;
}

function promisify(client: grpc.Client): Record<string, Call> {
  return new Proxy({} as Record<string, Call>, {
    get: (_t, name: string) => (req: Record<string, unknown> = {}) =>
      new Promise((resolve, reject) => {
        const fn = (client as unknown as Record<string, Function>)[name];
        if (typeof fn !== 'function') return reject(new Error(`no such rpc ${name}`));
        fn.call(client, req, { deadline: Date.now() + 120_000 }, (e: grpc.ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r)));
      }),
  });
}

export function criClient(socket: string): CriClient {
  const pkg = loadCriPackage().runtime.v1;
  const rt = new pkg.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  const im = new pkg.ImageService(`unix://${socket}`, grpc.credentials.createInsecure());
  const events = () => (rt as unknown as { GetContainerEvents(r: object): grpc.ClientReadableStream<any> }).GetContainerEvents({});
  return { runtime: promisify(rt), image: promisify(im), events, close: () => (rt.close(), im.close()) };
}

/** The gRPC status code of a failed call. */
export async function codeOf(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    const g = e as grpc.ServiceError;
    return { code: g.code, details: g.details };
  }
  throw new Error('the call succeeded');
}

/** Upgrade a streaming URL to SPDY/3.1 with the given stream protocols, as the kubelet and critest do. */
export function spdyUpgrade(url: string, protocols: string[]): Promise<{ conn: SpdyConnection; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocols } });
    req.on('upgrade', (res, socket, head) => {
      const conn = new SpdyConnection(socket);
      if (head.length) socket.unshift(head);
      resolve({ conn, protocol: String(res.headers['x-stream-protocol-version']) });
    });
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

const collect = (s: Readable) =>
  new Promise<string>((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => resolve(Buffer.concat(parts).toString()));
  });

/** Run a remotecommand session (exec or attach) on `url`: stdin (if given) is written and closed. */
export async function remoteCommand(url: string, o: { stdin?: string; stderr?: boolean; until?: (out: string) => boolean } = {}) {
  const { conn, protocol } = await spdyUpgrade(url, ['v4.channel.k8s.io', 'channel.k8s.io']);
  const error = await conn.openStream({ streamtype: 'error' });
  const stdin = o.stdin !== undefined ? await conn.openStream({ streamtype: 'stdin' }) : undefined;
  const stdout = await conn.openStream({ streamtype: 'stdout' });
  const stderr = o.stderr === false ? undefined : await conn.openStream({ streamtype: 'stderr' });
  if (stdin) stdin.end(o.stdin);
  const outP = collect(stdout);
  if (o.until) {
    let seen = '';
    await new Promise<void>((r) => stdout.on('data', (d: Buffer) => ((seen += d.toString()), o.until!(seen) && r())));
    conn.close();
    return { protocol, stdout: seen, stderr: '', status: '' };
  }
  const [out, err, status] = await Promise.all([outP, stderr ? collect(stderr) : '', collect(error)]);
  conn.close();
  return { protocol, stdout: out, stderr: err, status };
}

/** One connection through a port-forward URL: send `data`, read until the pod closes. */
export async function portForwardOnce(url: string, port: number, data: string): Promise<string> {
  const { conn } = await spdyUpgrade(url, ['portforward.k8s.io']);
  const error = await conn.openStream({ streamtype: 'error', port: String(port), requestid: '0' });
  const stream = await conn.openStream({ streamtype: 'data', port: String(port), requestid: '0' });
  stream.write(data);
  // The server ends both streams once the connection in the pod is done (or could not be made).
  const [out, err] = await Promise.all([collect(stream), collect(error)]);
  conn.close();
  return err ? `error: ${err}` : out;
}

/** A remotecommand session over a WebSocket (the channel protocols): stdin (if given) is sent, then closed with v5's
 *  close signal; output is collected until the server closes. */
export function wsRemoteCommand(url: string, protocols: string[], o: { stdin?: string } = {}): Promise<{ protocol: string; stdout: string; stderr: string; status: string; code: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols);
    const out: Record<number, Buffer[]> = { 1: [], 2: [], 3: [] };
    let b64 = false;
    ws.on('open', () => {
      b64 = ws.protocol.includes('base64.');
      if (o.stdin !== undefined) {
        ws.send(b64 ? '0' + Buffer.from(o.stdin).toString('base64') : Buffer.concat([Buffer.from([0]), Buffer.from(o.stdin)]));
        if (ws.protocol.startsWith('v5.')) ws.send(Buffer.from([255, 0]));
      }
    });
    ws.on('message', (m: Buffer) => {
      if (!m.length || m[0] === 255) return;
      const ch = b64 ? m[0] - 0x30 : m[0];
      const data = b64 ? Buffer.from(m.subarray(1).toString(), 'base64') : m.subarray(1);
      out[ch]?.push(data);
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('close', (code) => resolve({ protocol: ws.protocol, stdout: Buffer.concat(out[1]).toString(), stderr: Buffer.concat(out[2]).toString(), status: Buffer.concat(out[3]).toString(), code }));
  });
}

/** One port through a WebSocket port-forward (data channel 0, error channel 1, each opened with the port). */
export function wsPortForwardOnce(url: string, port: number, data: string): Promise<{ out: string; err: string; ports: number[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v4.channel.k8s.io']);
    const got: Record<number, Buffer[]> = { 0: [], 1: [] };
    const ports: number[] = [];
    ws.on('open', () => ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(data)])));
    ws.on('message', (m: Buffer) => {
      const ch = m[0];
      const body = m.subarray(1);
      // The first message of each channel is its port.
      if (ports[ch] === undefined) return void (ports[ch] = body.length === 2 ? body.readUInt16LE(0) : -1);
      got[ch]?.push(body);
    });
    ws.on('unexpected-response', (_req, res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    ws.on('error', reject);
    ws.on('close', () => resolve({ out: Buffer.concat(got[0]).toString(), err: Buffer.concat(got[1]).toString(), ports }));
  });
}
