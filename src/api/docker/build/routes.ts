// POST /build: the classic builder's endpoint as the CLI drives it (context tar body, JSON message stream reply).

import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { makeDirs } from '../../../common/atomic.js';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { putArchive, readSmallFile } from '../../../compute/archive.js';
import { shortId } from '../../../common/ids.js';
import type { Ctx } from '../ctx.js';
import { extraHost } from '../translate.js';
import { dockerInvalid, toDockerError } from '../errors.js';
import { all, first, flag, type Query } from '../util.js';
import { stepLimits } from './options.js';
import { runBuild, tagAll } from './builder.js';
import { DockerfileError } from './dockerfile.js';
import { BUILD_OWNER } from './owner.js';
import { isIgnored } from './ignore.js';
import { BuildError, type Resources } from './steps.js';

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
  if (head[0] === 0x1f && head[1] === 0x8b) yield* padded(Readable.from(rest()).pipe(createGunzip()) as AsyncIterable<Uint8Array>);
  else yield* padded(rest());
}

/** The docker CLI ends a context that carries a Dockerfile from outside it right after that file's bytes: no padding
 *  to the 512-byte block, no end-of-archive blocks (dockerd's reader accepts it). What is missing is added. */
async function* padded(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const c of src) {
    n += c.length;
    yield c;
  }
  yield Buffer.alloc((512 - (n % 512)) % 512 + 1024);
}

/** `networkmode` of a build: where its RUN steps run. */
function stepNetwork(mode: string | undefined): Pick<Resources, 'network' | 'hostNetwork'> {
  const m = mode ?? '';
  if (m === '' || m === 'default' || m === 'bridge') return {};
  if (m === 'host') return { hostNetwork: true };
  if (m.startsWith('container:')) throw dockerInvalid(`network mode "${m}" is not supported for a build: use a network's name, none or host`);
  return { network: m };
}

function extraHosts(v: unknown): { Name: string; IpAddress: string }[] {
  return all(v).flatMap((s) => s.split(',')).filter(Boolean).map(extraHost);
}

/** The Dockerfile and .dockerignore leave the context once read when .dockerignore names them (ignore.ts). */
async function dropIgnoredBuildFiles(view: { rootfs: string; mounts: never[] }, dir: string, dockerfile: string): Promise<void> {
  const ignore = await readSmallFile(view, '.dockerignore', 1 << 20);
  if (ignore === undefined) return;
  for (const name of [dockerfile, '.dockerignore']) {
    const rel = posix.normalize(name.replace(/^\/+/, ''));
    if (rel.startsWith('..') || !isIgnored(ignore, rel)) continue;
    await rm(join(dir, rel), { force: true });
  }
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
      cacheFrom: [] as string[],
      target: first(q.target) || undefined,
      // --pull: every FROM image pulled again, even one that is here. rm and forcerm: the steps' containers are
      // always removed, as forcerm asks; rm=0 (docker-py's default) is taken and does the same (docs/docker.md).
      pull: flag(q.pull),
      resources: {
        ...stepNetwork(first(q.networkmode)),
        extraHosts: extraHosts(q.extrahosts),
        ...stepLimits(q),
      } as Resources,
    };
    if (opts.resources.hostNetwork && opts.resources.extraHosts?.length) throw dockerInvalid('--add-host with --network host is not supported by Silo (the host\'s /etc/hosts is used)');
    // The classic builder matches steps against the history of the cache-from images (build/cache-from.ts).
    let cacheFrom: unknown = [];
    try {
      cacheFrom = JSON.parse(first(q.cachefrom) || '[]');
    } catch {
      throw dockerInvalid(`invalid cachefrom: ${first(q.cachefrom)}`);
    }
    if (!Array.isArray(cacheFrom) || cacheFrom.some((c) => typeof c !== 'string')) throw dockerInvalid(`invalid cachefrom: ${first(q.cachefrom)}`);
    opts.cacheFrom = cacheFrom as string[];
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
      await dropIgnoredBuildFiles(view, dir, opts.dockerfile);
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
