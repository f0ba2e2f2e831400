// POST /build: the classic builder's endpoint as the CLI drives it (context tar body, JSON message stream reply).

import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { makeDirs } from '../../../common/atomic.js';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { putArchive, readSmallFile } from '../../../compute/archive.js';
import { shortId } from '../../../common/ids.js';
import type { Ctx } from '../ctx.js';
import { dockerInvalid, toDockerError } from '../errors.js';
import { all, first, flag, int, type Query } from '../util.js';
import { runBuild, tagAll } from './builder.js';
import { DockerfileError } from './dockerfile.js';
import { BUILD_OWNER } from './owner.js';
import { BuildError } from './steps.js';

function jsonParam(v: string | undefined, name: string): Record<string, string> {
  if (!v) return {};
  try {
    const o = JSON.parse(v) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(o ?? {}).filter(([, x]) => x !== null).map(([k, x]) => [k, String(x)]));
  } catch {
    throw dockerInvalid(`invalid ${name}: ${v}`);
  }
}

/** gzip'd contexts (`docker build - < ctx.tar.gz`) are inflated; plain tars pass through. */
async function* inflate(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const it = src[Symbol.asyncIterator]();
  const firstChunk = await it.next();
  if (firstChunk.done) return;
  const head = Buffer.from(firstChunk.value);
  async function* rest() {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (head[0] === 0x1f && head[1] === 0x8b) yield* Readable.from(rest()).pipe(createGunzip()) as AsyncIterable<Uint8Array>;
  else yield* rest();
}

export function buildRoutes(app: FastifyInstance, x: Ctx): void {
  // Step containers never outlive their daemon: the builder says so before the door serves, and what an interrupted
  // build left is removed then.
  app.addHook('onReady', async () => {
    await x.svc.compute.registerTransientOwner(BUILD_OWNER);
  });
  app.post<{ Querystring: Query }>('/build', async (req, reply) => {
    const q = req.query;
    const quiet = flag(q.q);
    const opts = {
      dockerfile: first(q.dockerfile) || 'Dockerfile',
      tags: all(q.t).filter(Boolean),
      buildArgs: jsonParam(first(q.buildargs), 'buildargs'),
      labels: jsonParam(first(q.labels), 'labels'),
      nocache: flag(q.nocache),
      target: first(q.target) || undefined,
      resources: {
        network: first(q.networkmode) === 'none' ? 'none' : undefined,
        memory: int(q.memory, 'memory') || undefined,
      },
    };
    if (first(q.networkmode) === 'host') throw dockerInvalid('network mode "host" is not supported by Silo');
    if (first(q.remote)) throw dockerInvalid('remote build contexts are not supported by Silo; send the context as the body');
    const dir = join(x.stateDir, 'docker', 'build', randomBytes(8).toString('hex'));
    await makeDirs(dir);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    const line = (o: unknown) => res.write(JSON.stringify(o) + '\r\n');
    const out = (s: string) => {
      if (!quiet) line({ stream: s });
    };
    try {
      const view = { rootfs: dir, mounts: [] };
      await putArchive(view, '/', inflate(req.body as AsyncIterable<Uint8Array>), {});
      const text = await readSmallFile(view, opts.dockerfile, 4 << 20);
      if (text === undefined) throw new BuildError(`Cannot locate specified Dockerfile: ${opts.dockerfile}`);
      const id = await runBuild(x, view, text, opts, out);
      line({ aux: { ID: id } });
      out(`Successfully built ${shortId(id)}\n`);
      for (const t of await tagAll(x, id, opts.tags)) out(`Successfully tagged ${t}\n`);
      if (quiet) line({ stream: `${id}\n` });
    } catch (e) {
      const code = e instanceof BuildError ? e.code : 1;
      const message = e instanceof BuildError || e instanceof DockerfileError ? e.message : toDockerError(e).message;
      line({ errorDetail: { code, message }, error: message });
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      res.end();
    }
  });
}
