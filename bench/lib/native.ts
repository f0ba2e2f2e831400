// A small client of Silo's native API (docs/api.md) over its unix socket with node:http and a keep-alive agent, the
// way a program embedding Silo would talk to it: no CLI process per container. It also times each call, which is how
// the bench splits Silo's `run --rm` into phases (create = root mount + network, start = conmon + runc, wait, remove).

import http from 'node:http';
import { performance } from 'node:perf_hooks';

export class NativeClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(private readonly socketPath: string) {}

  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method,
          path,
          headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300) return reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`));
            resolve((text ? JSON.parse(text) : undefined) as T);
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface Phases {
  create: number;
  start: number;
  wait: number;
  remove: number;
  total: number;
}

/** create → start → wait → remove of `busybox true`; the exit code must be 0. */
export async function runTrue(c: NativeClient, network?: string): Promise<Phases> {
  const t0 = performance.now();
  const doc: Record<string, unknown> = { Process: { CommandArgs: ['true'] } };
  if (network) doc.Container = { Networking: { Network: network } };
  const { Id } = await c.request<{ Id: string }>('POST', '/v1/systems', { Image: 'busybox', Document: doc });
  const t1 = performance.now();
  await c.request('POST', `/v1/systems/${Id}/start`);
  const t2 = performance.now();
  const { ExitCode } = await c.request<{ ExitCode: number }>('POST', `/v1/systems/${Id}/wait`);
  const t3 = performance.now();
  await c.request('DELETE', `/v1/systems/${Id}?force=1`);
  const t4 = performance.now();
  if (ExitCode !== 0) throw new Error(`busybox true exited ${ExitCode}`);
  return { create: t1 - t0, start: t2 - t1, wait: t3 - t2, remove: t4 - t3, total: t4 - t0 };
}
