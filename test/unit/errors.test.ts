// The one error table: every class has an HTTP and a gRPC status, both doors use it, and no message names a host path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import {
  Grpc,
  STATUS,
  SiloError,
  diskFull,
  exhausted,
  hideHostPaths,
  internal,
  invalid,
  noCapacity,
  notFound,
  scrubHostPaths,
  toWire,
  type ErrorClass,
} from '../../src/common/errors.js';
import { toHttpError } from '../../src/api/native/errors.js';
import { DockerError, toDockerError } from '../../src/api/docker/errors.js';

test('every class maps to an HTTP status and a gRPC code', () => {
  const expected: Record<ErrorClass, [number, number]> = {
    InvalidArgument: [400, 3],
    NotFound: [404, 5],
    AlreadyExists: [409, 6],
    Conflict: [409, 10],
    FailedPrecondition: [409, 9],
    ResourceExhausted: [413, 8],
    NoCapacity: [503, 8],
    DiskFull: [500, 8],
    Unimplemented: [501, 12],
    Unavailable: [503, 14],
    Unauthenticated: [401, 16],
    Internal: [500, 13],
  };
  assert.deepEqual(Object.keys(STATUS).sort(), Object.keys(expected).sort());
  for (const [cls, [http, grpc]] of Object.entries(expected)) {
    assert.deepEqual(STATUS[cls as ErrorClass], { http, grpc }, cls);
    assert.ok(Object.values(Grpc).includes(grpc as never), cls);
  }
});

test('both HTTP doors give the same status for the same error', () => {
  const errs = [invalid('x'), notFound('image', 'y'), exhausted('cap'), noCapacity('no address'), diskFull('no space'), internal('boom')];
  for (const e of errs) {
    const n = toHttpError(e).status;
    assert.equal(n, STATUS[e.class].http, e.class);
    assert.equal(toDockerError(e).status, n, e.class);
  }
  // A full disk is dockerd's 500 in both; the native body tells it apart by its code.
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write '/var/lib/x/y.tmp'"), { code: 'ENOSPC', syscall: 'write' });
  assert.deepEqual(toHttpError(enospc), { status: 500, body: { code: 'SILO_DISK_FULL', message: 'no space left on the state filesystem (write: ENOSPC)' } });
  assert.equal(toDockerError(enospc).status, 500);
  assert.equal(toWire(enospc).grpc, Grpc.RESOURCE_EXHAUSTED);
  // A service's internal error caused by a full disk is still a full disk.
  assert.equal(toWire(internal('commit failed', enospc)).code, 'SILO_DISK_FULL');
});

test('docker wording comes from the fields, and docker-worded errors keep their status', () => {
  assert.deepEqual(toDockerError(notFound('image', 'busybox')), { status: 404, message: 'No such image: busybox:latest' });
  assert.deepEqual(toDockerError(notFound('network', 'n1')), { status: 404, message: 'network n1 not found' });
  assert.deepEqual(toDockerError(notFound('volume', 'v')), { status: 404, message: 'get v: no such volume' });
  assert.deepEqual(toDockerError(notFound('exec instance', 'e')), { status: 404, message: 'No such exec instance: e' });
  assert.deepEqual(toHttpError(notFound('image', 'busybox')).body, { code: 'SILO_NOT_FOUND', message: 'no such image: busybox' });
  assert.deepEqual(toDockerError(new DockerError(400, 'bad')), { status: 400, message: 'bad' });
  assert.ok(new DockerError(404, 'gone') instanceof SiloError);
  // The HTTP server's own client errors keep their status.
  const tooBig = Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
  assert.equal(toHttpError(tooBig).status, 413);
  assert.equal(toDockerError(tooBig).status, 413);
});

test('no message names a host path', async () => {
  hideHostPaths('/var/lib/silo-unit-x', '/run/silo-unit-x');
  assert.equal(scrubHostPaths("open '/var/lib/silo-unit-x/systems/a.json.tmp' failed"), 'open failed');
  assert.equal(scrubHostPaths('mount /run/silo-unit-x/storage/m/1: busy'), 'mount: busy');
  assert.equal(scrubHostPaths('COPY failed: stat /etc/x: not found'), 'COPY failed: stat /etc/x: not found');
  assert.equal(scrubHostPaths('/var/lib/silo-unit-xy/z'), '/var/lib/silo-unit-xy/z');
  // A real ENAMETOOLONG from the kernel: the client's error, and its path is gone.
  const deep = '/tmp/' + Array.from({ length: 3000 }, () => 'd').join('/');
  const e = await mkdir(deep, { recursive: true }).then(() => undefined, (x: unknown) => x);
  assert.ok(e, 'mkdir of a 6000-byte path fails');
  const w = toWire(e);
  assert.equal(w.http, 400);
  assert.equal(w.code, 'SILO_NAME_TOO_LONG');
  assert.doesNotMatch(w.message, /\/tmp\/d/);
  // Any other system error: internal, and still without its path.
  const enoent = await mkdir('/proc/silo-nonexistent/x').then(() => undefined, (x: unknown) => x);
  assert.equal(toWire(enoent).http, 500);
  assert.doesNotMatch(toWire(enoent).message, /silo-nonexistent/);
});

test('the CRI door answers by the same table, without host paths', async () => {
  const { grpcError } = await import('../../src/api/cri/server.js');
  hideHostPaths('/var/lib/silo-unit-x');
  assert.deepEqual(grpcError(notFound('container', 'c1')), { code: Grpc.NOT_FOUND, details: 'no such container: c1' });
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write '/var/lib/silo-unit-x/blobs/a.tmp'"), { code: 'ENOSPC', syscall: 'write' });
  const full = grpcError(enospc);
  assert.equal(full.code, Grpc.RESOURCE_EXHAUSTED);
  assert.doesNotMatch(String(full.details), /silo-unit-x/);
  assert.equal(grpcError(internal("mount /var/lib/silo-unit-x/m: busy")).details, 'mount: busy');
  assert.equal(grpcError(Object.assign(new Error('nope'), { grpcCode: Grpc.UNIMPLEMENTED })).code, Grpc.UNIMPLEMENTED);
});
