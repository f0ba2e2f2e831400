// A TypeScript CRI client for the tests: the same .proto as the server, promises for unary calls.

import * as grpc from '@grpc/grpc-js';
import { loadCriPackage } from '../../src/api/cri/server.js';

export type Call = (req?: Record<string, unknown>) => Promise<any>;

export interface CriClient {
  runtime: Record<string, Call>;
  image: Record<string, Call>;
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
  return { runtime: promisify(rt), image: promisify(im), close: () => (rt.close(), im.close()) };
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
