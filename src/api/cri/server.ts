// The CRI front door: a gRPC server on a unix socket answering runtime.v1's RuntimeService and ImageService, mapped onto
// the compute, network and storage services (as containerd's CRI plugin maps them onto its own services).

import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { isSiloError, oneLine, scrubHostPaths, toWire } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';

/** The .proto ships beside the sources; the compiled server finds it from dist/src/api/cri/. */
const PROTO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../src/api/cri/runtime-v1.proto');

export type Handler = (req: any) => Promise<unknown>;
export type StreamHandler = (req: any, call: grpc.ServerWritableStream<any, any>) => Promise<void>;


/**
 * An error as a gRPC status by the one table (src/common/errors.ts): a system call's error becomes its Silo class
 * (a full disk RESOURCE_EXHAUSTED), and no detail names a host path. The door's own gRPC codes pass through.
 */
export function grpcError(e: unknown): Partial<grpc.StatusObject> {
  const own = (e as { grpcCode?: grpc.status } | null)?.grpcCode;
  if (own !== undefined && !isSiloError(e)) return { code: own, details: scrubHostPaths(oneLine(e)) };
  const w = toWire(e);
  return { code: w.grpc, details: w.message };
}

export function loadCriPackage() {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, arrays: true, objects: false });
  return grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } } };
}

export interface CriHandlers {
  runtime: Record<string, Handler | StreamHandler>;
  image: Record<string, Handler>;
}

function implement(service: grpc.ServiceDefinition, handlers: Record<string, Handler | StreamHandler>, log: Logger): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(service)) {
    const h = handlers[name];
    if (def.responseStream) {
      impl[name] = (call: grpc.ServerWritableStream<any, any>) => {
        if (!h) return call.destroy(Object.assign(new Error(`${name} is not implemented by Silo`), { code: grpc.status.UNIMPLEMENTED }));
        (h as StreamHandler)(call.request, call).then(
          () => call.end(),
          (e) => call.destroy(Object.assign(new Error(oneLine(e)), grpcError(e))),
        );
      };
      continue;
    }
    impl[name] = (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      if (!h) return cb({ code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented by Silo` });
      (h as Handler)(call.request).then(
        (r) => cb(null, r ?? {}),
        (e) => {
          const err = grpcError(e);
          // The log keeps the whole message (host paths included) for the operator.
          if (err.code === grpc.status.INTERNAL) log.error({ door: 'cri', method: name, err: oneLine(e) }, 'request failed');
          cb(err);
        },
      );
    };
  }
  return impl;
}

export interface CriServer {
  socketPath: string;
  close(): Promise<void>;
}

/** Serve the handlers on `socketPath` (mode 0660, like the other sockets). */
export async function serveCri(socketPath: string, handlers: CriHandlers, log: Logger): Promise<CriServer> {
  const server = grpcServer(handlers, log);
  await mkdir(dirname(socketPath), { recursive: true });
  await rm(socketPath, { force: true });
  await new Promise<void>((res, rej) => server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
  await chmod(socketPath, 0o660);
  return {
    socketPath,
    close: () => shutdown(server).then(() => rm(socketPath, { force: true })),
  };
}

/** Streams (events) would keep a graceful shutdown waiting: give them a moment, then cut. */
function shutdown(server: grpc.Server): Promise<void> {
  return new Promise<void>((res) => {
    const t = setTimeout(() => server.forceShutdown(), 2000);
    server.tryShutdown(() => {
      clearTimeout(t);
      res();
    });
  });
}

function grpcServer(handlers: CriHandlers, log: Logger): grpc.Server {
  const pkg = loadCriPackage().runtime.v1;
  // Status codes and messages only: no server reflection, one client (the kubelet) at a time is the common case.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  server.addService(pkg.RuntimeService.service, implement(pkg.RuntimeService.service, handlers.runtime, log));
  server.addService(pkg.ImageService.service, implement(pkg.ImageService.service, handlers.image as Record<string, Handler>, log));
  return server;
}

/** The same service on connections another listener accepted (the daemon's socket, before gRPC was loaded). */
export function criOnConnections(handlers: CriHandlers, log: Logger): { accept(socket: Duplex): void; close(): Promise<void> } {
  const server = grpcServer(handlers, log);
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  return {
    accept: (socket) => injector.injectConnection(socket),
    close: () => shutdown(server),
  };
}

export const criSocketDefault = (runDir: string) => join(runDir, 'cri.sock');
