// The steps of a build that touch a root: RUN (a container from the current image, run to completion through the
// compute service, committed) and COPY/ADD (files put into a created, never started container, committed). A
// container's root is reached only through the compute service's copies; the build context and the sources staged
// out of another stage's container are host directories of the build.

import { createHash } from 'node:crypto';
import { faultPoint } from '../../../common/fault.js';
import { BUILD_OWNER } from './owner.js';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { mkdirAll, putArchive, resolvePath, tarOf, type RootView } from '../../../compute/archive.js';
import type { CreateSystemRequest } from '../../../compute/types.js';
import type { ImageConfig } from '../../../storage/types.js';
import type { Ctx } from '../ctx.js';

export class BuildError extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

export interface Resources {
  /** A network by name, or none; default: Silo's default network. */
  network?: string;
  /** RUN in the host's network namespace (`docker build --network host`). */
  hostNetwork?: boolean;
  /** More lines of the steps' /etc/hosts (`--add-host`). */
  extraHosts?: { Name: string; IpAddress: string }[];
  memory?: number;
  /** cgroup cpu.shares, a CPU count (quota / period) and the CPUs a step may use (`--cpu-shares`, `--cpu-quota`…). */
  cpuShares?: number;
  cpus?: number;
  cpusetCpus?: string;
  shmSize?: number;
  ulimits?: { Name: string; Soft: number; Hard: number }[];
}

/** A created (not started) container of `image` for one step; removed by the caller. */
export async function stepContainer(x: Ctx, image: string, process: NonNullable<CreateSystemRequest['Document']>['Process'], r: Resources): Promise<string> {
  const rec = await x.svc.compute.create({
    Image: image,
    Document: {
      Owner: BUILD_OWNER,
      Isolation: 'process',
      Container: {
        // RUN gets the default network like docker's; steps that never start (COPY) ask for none.
        ...(r.hostNetwork
          ? { Namespaces: { Network: { Mode: 'host' as const } } }
          : r.network || r.extraHosts?.length
            ? { Networking: { ...(r.network ? { Network: r.network } : {}), ...(r.extraHosts?.length ? { ExtraHosts: r.extraHosts } : {}) } }
            : {}),
        ...(r.memory ? { Memory: { SizeInMB: r.memory / (1024 * 1024) } } : {}),
        ...(r.cpuShares || r.cpus || r.cpusetCpus
          ? { Processor: { ...(r.cpuShares ? { Shares: r.cpuShares } : {}), ...(r.cpus ? { Count: r.cpus } : {}), ...(r.cpusetCpus ? { CpusetCpus: r.cpusetCpus } : {}) } }
          : {}),
        ...(r.shmSize ? { ShmSizeInBytes: r.shmSize } : {}),
        ...(r.ulimits?.length ? { Ulimits: r.ulimits } : {}),
      },
      Process: process,
    },
  });
  return rec.Id;
}

/** RUN: start the step's command, stream its output, fail the build on a non-zero exit. */
export async function runStep(x: Ctx, image: string, argv: string[], env: Record<string, string>, cfg: ImageConfig, r: Resources, out: (s: string) => void, createdBy = argv.join(' ')): Promise<string> {
  const c = x.svc.compute;
  const id = await stepContainer(x, image, { CommandArgs: argv, Entrypoint: [], ...(Object.keys(env).length ? { Environment: env } : {}) }, r);
  try {
    out(` ---> Running in ${id.slice(0, 12)}\n`);
    if (cfg.WorkingDir) await c.makeDirectory(id, cfg.WorkingDir);
    let ended!: () => void;
    const outputDone = new Promise<void>((res) => (ended = res));
    await c.attach(id, { wantStdin: false, onOutput: (_s, d) => out(d.toString('utf8')), onEnd: () => ended() });
    const exited = c.wait(id, 'next-exit');
    await c.start(id);
    faultPoint('build.after-step-start');
    const code = await exited;
    await Promise.race([outputDone, new Promise((res) => setTimeout(res, 2000))]);
    if (code !== 0) throw new BuildError(`The command '${argv.join(' ')}' returned a non-zero code: ${code}`, code);
    const img = await c.commit(id, { config: cfg, createdBy });
    faultPoint('build.after-step-commit');
    out(` ---> Removed intermediate container ${id.slice(0, 12)}\n`);
    return img.id;
  } finally {
    await c.remove(id, { force: true }).catch(() => {});
  }
}

export interface CopySource {
  view: RootView;
  /** Container-side (or context-side) paths, resolved. */
  paths: string[];
}

const GLOB = /[*?[]/;

/** Expand a COPY source against a root: wildcards in the last component; symlinks resolved inside the root. */
export async function expandSource(v: RootView, src: string): Promise<string[]> {
  const clean = posix.normalize('/' + src);
  const base = posix.basename(clean);
  if (!GLOB.test(base)) {
    const p = await resolvePath(v, clean, true);
    await lstat(v.rootfs + p).catch(() => {
      throw new BuildError(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`);
    });
    return [p];
  }
  const dir = await resolvePath(v, posix.dirname(clean), true);
  const re = new RegExp('^' + base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  const hits = (await readdir(v.rootfs + dir).catch(() => [] as string[])).filter((n) => re.test(n)).sort();
  if (!hits.length) throw new BuildError(`COPY failed: no source files were specified`);
  return hits.map((n) => posix.join(dir, n));
}

/** Content hash of the sources, for the cache key: names, modes, link targets and bytes. */
export async function hashSources(v: RootView, paths: string[]): Promise<string> {
  const h = createHash('sha256');
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(v.rootfs + p);
    h.update(`${p}\0${st.mode}\0`);
    if (st.isDirectory()) for (const n of (await readdir(v.rootfs + p)).sort()) await walk(posix.join(p, n));
    else if (st.isSymbolicLink()) h.update(await (await import('node:fs/promises')).readlink(v.rootfs + p));
    else if (st.isFile()) h.update(await readFile(v.rootfs + p));
  };
  for (const p of paths) await walk(p);
  return h.digest('hex');
}

/** "uid[:gid]" or names looked up in the step container's /etc/passwd and /etc/group. */
export async function ownerOf(x: Ctx, step: string, chown: string | undefined): Promise<{ uid: number; gid: number }> {
  if (!chown) return { uid: 0, gid: 0 };
  const [u, g] = chown.split(':');
  const lookup = async (file: string, name: string) => {
    if (/^\d+$/.test(name)) return Number(name);
    const text = (await x.svc.compute.readFile(step, file)) ?? '';
    const row = text.split('\n').find((l) => l.split(':')[0] === name);
    if (!row) throw new BuildError(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${name}`);
    return Number(row.split(':')[2]);
  };
  const uid = await lookup('/etc/passwd', u);
  const gid = g !== undefined ? await lookup('/etc/group', g) : uid;
  return { uid, gid };
}

/**
 * COPY --from: the sources copied out of the stage's container `id` into the host directory `staging` (at the paths
 * they resolve to in the container; a symbolic link's target too). Returns the source words as they now read there.
 */
export async function stageSources(x: Ctx, id: string, words: string[], staging: RootView): Promise<string[]> {
  const c = x.svc.compute;
  const out: string[] = [];
  const stage = async (path: string) => {
    const dir = await mkdirAll(staging, posix.dirname(path));
    await c.copyOut(id, path, (_st, tar) => putArchive(staging, dir, tar as AsyncIterable<Uint8Array>, {}));
  };
  for (const src of words) {
    const clean = posix.normalize('/' + src);
    const glob = GLOB.test(posix.basename(clean));
    const { stat, path } = await c.statPath(id, glob ? posix.dirname(clean) : clean).catch(() => {
      throw new BuildError(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`);
    });
    await stage(path);
    if (stat.linkTarget) await stage(stat.linkTarget);
    out.push(glob ? posix.join(path, posix.basename(clean)) : path);
  }
  return out;
}

/** Is this file a tar ADD should unpack (plain or gzip'd)? */
async function archiveKind(path: string): Promise<'tar' | 'gzip' | undefined> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (bytesRead >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/** COPY/ADD `src` paths (resolved in `from`) to `dest` in the step container `step`. */
export async function copyInto(x: Ctx, from: RootView, paths: string[], step: string, dest: string, workdir: string, o: { add: boolean; owner: { uid: number; gid: number }; chmod?: number }): Promise<void> {
  const c = x.svc.compute;
  const abs = dest.startsWith('/') ? dest : posix.join(workdir || '/', dest);
  const intoDir = dest.endsWith('/') || paths.length > 1 || dest === '.';
  for (const p of paths) {
    const st = await lstat(from.rootfs + p);
    if (o.add && st.isFile()) {
      const kind = await archiveKind(from.rootfs + p);
      if (kind) {
        const d = await c.makeDirectory(step, abs);
        const raw = (await open(from.rootfs + p, 'r')).createReadStream();
        await c.copyIn(step, d, (kind === 'gzip' ? raw.pipe(createGunzip()) : raw) as AsyncIterable<Uint8Array>, {});
        continue;
      }
    }
    let dir: string;
    let name: string;
    if (st.isDirectory()) {
      dir = await c.makeDirectory(step, abs);
      name = '.';
    } else if (intoDir) {
      dir = await c.makeDirectory(step, abs);
      name = posix.basename(p);
    } else {
      dir = await c.makeDirectory(step, posix.dirname(abs));
      name = posix.basename(abs);
    }
    const t = tarOf(from, p, name);
    await c.copyIn(step, dir, withMode(t, o.chmod), { owner: o.owner });
  }
}

/** --chmod: every entry's permission bits replaced. */
async function* withMode(t: Readable, chmod?: number): AsyncGenerator<Uint8Array> {
  if (chmod === undefined) return yield* t as AsyncIterable<Uint8Array>;
  // Re-pack with the mode changed; small cost for a rarely used flag.
  const tar = await import('tar-stream');
  const ex = tar.extract();
  const pack = tar.pack();
  t.pipe(ex);
  void (async () => {
    for await (const e of ex as unknown as AsyncIterable<Readable & { header: Parameters<typeof pack.entry>[0] }>) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      pack.entry({ ...e.header, mode: chmod }, Buffer.concat(chunks));
    }
    pack.finalize();
  })().catch((e) => pack.destroy(e as Error));
  yield* pack as unknown as AsyncIterable<Uint8Array>;
}
