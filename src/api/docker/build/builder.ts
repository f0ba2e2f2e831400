// The classic builder: a Dockerfile's instructions run in order, each producing an image from the previous one
// through the storage service (metadata steps) or a compute system (RUN, COPY, ADD); a cache of
// (parent, instruction, sources) → image makes an unchanged rebuild reuse every step.

import { mkdtemp, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { RootView } from '../../../compute/archive.js';
import { shortId } from '../../../common/ids.js';
import { oneLine } from '../../../common/errors.js';
import { familiarName, normalizeName } from '../../../storage/reference.js';
import { applyInstruction, isConfigInstruction } from '../../../storage/changes.js';
import type { Image, ImageConfig } from '../../../storage/types.js';
import type { Ctx } from '../ctx.js';
import { BuildCache } from './cache.js';
import { begins, continuing, runCreatedBy } from './cache-from.js';
import { keyValues, parseDockerfile, splitWords, substitute, type Instruction } from './dockerfile.js';
import { BuildError, copyInto, expandSource, hashSources, ownerOf, runStep, stageSources, stepContainer, type Resources } from './steps.js';

export interface BuildOptions {
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  nocache: boolean;
  /** Images trusted as cache sources (--cache-from). */
  cacheFrom?: string[];
  target?: string;
  /** Pull every FROM image, even one that is here (docker build --pull). */
  pull?: boolean;
  resources: Resources;
}

interface Stage {
  name?: string;
  image: string;
  config: ImageConfig;
  args: Map<string, string>;
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];

export async function runBuild(x: Ctx, context: RootView, dockerfileText: string, o: BuildOptions, out: (s: string) => void): Promise<string> {
  const st = x.svc.storage;
  const all = parseDockerfile(dockerfileText);
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  let cur: Stage | undefined;
  const steps = o.target ? cutAtTarget(all, o.target) : all;
  const cleanup: string[] = [];
  const staged: string[] = [];
  const vars = (s: Stage | undefined) => {
    const m = new Map(s ? s.args : globalArgs);
    for (const e of s?.config.Env ?? []) m.set(e.split('=')[0], e.slice(e.indexOf('=') + 1));
    return m;
  };
  // A cache source that is not here is skipped with a line, as docker's builder does.
  const sources: Image[] = [];
  for (const ref of o.nocache ? [] : (o.cacheFrom ?? [])) {
    const img = await st.getImage(ref).catch(() => undefined);
    if (img) sources.push(img);
    else out(`Could not look up ${ref} for cache resolution, skipping\n`);
  }
  try {
    for (let i = 0; i < steps.length; i++) {
      const ins = steps[i];
      out(`Step ${i + 1}/${steps.length} : ${ins.original}\n`);
      const sub = (s: string) => substitute(s, vars(cur));
      if (ins.cmd === 'FROM') {
        const words = splitWords(substitute(ins.rest, globalArgs));
        const ref = words[0];
        const name = words[1]?.toUpperCase() === 'AS' ? words[2] : undefined;
        const prior = stages.find((s) => s.name === ref);
        let image: string;
        let config: ImageConfig;
        if (prior) ({ image, config } = prior);
        else if (ref === 'scratch') {
          const img = await st.importImage(Readable.from([Buffer.alloc(1024)]) as unknown as NodeJS.ReadableStream, {});
          ({ id: image, config } = img);
        } else {
          // Not here, or --pull: pull it, as the classic builder does, printing the pull's status lines (no byte counts).
          const pull = () =>
            x.svc.registry.pull(ref, { progress: (m) => m.current === undefined && !m.aux && out(`${m.id ? `${m.id}: ` : ''}${m.status}\n`) }).catch((p) => {
              throw new BuildError(oneLine(p));
            });
          const img = o.pull
            ? await pull()
            : await st.getImage(ref).catch(async (e) => {
                if ((e as { class?: string }).class !== 'NotFound') throw e;
                return pull();
              });
          ({ id: image, config } = img);
        }
        cur = { name, image, config: { ...config }, args: new Map() };
        stages.push(cur);
        out(` ---> ${shortId(image)}\n`);
        // The base's ONBUILD triggers run right after its FROM, as docker does; the image made here does not keep them.
        if (config.OnBuild?.length) {
          out(`# Executing ${config.OnBuild.length} build trigger${config.OnBuild.length > 1 ? 's' : ''}\n`);
          steps.splice(i + 1, 0, ...parseDockerfile(config.OnBuild.join('\n')));
          cur.config.OnBuild = undefined; // undefined, not deleted: a commit lays the config over its base's
        }
        continue;
      }
      if (ins.cmd === 'ARG') {
        for (const [k, v] of keyValues(ins.rest)) {
          const def = v === '' && !ins.rest.includes('=') ? undefined : substitute(v, vars(cur));
          const val = o.buildArgs[k] ?? def ?? (cur ? undefined : globalArgs.get(k));
          if (!cur) {
            if (val !== undefined) globalArgs.set(k, val);
          } else if (val !== undefined || globalArgs.has(k)) cur.args.set(k, val ?? globalArgs.get(k)!);
        }
        if (cur) out(` ---> ${shortId(cur.image)}\n`);
        continue;
      }
      if (!cur) throw new BuildError(`no build stage in current context: ${ins.cmd} before FROM`);
      const s = cur;
      let text = ins.original;
      let layer: 'run' | 'copy' | undefined;
      let cfg: ImageConfig = { ...s.config };
      if (isConfigInstruction(ins.cmd)) cfg = applyInstruction(s.config, ins, sub);
      else if (ins.cmd === 'RUN') layer = 'run';
      else if (ins.cmd === 'COPY' || ins.cmd === 'ADD') layer = 'copy';
      const argEnv = Object.fromEntries(s.args);
      if (layer === 'run') text += `\0${JSON.stringify(argEnv)}`;
      let hashed = '';
      let from: RootView = context;
      let paths: string[] = [];
      let dest = '';
      if (layer === 'copy') {
        const words = ins.json ?? splitWords(sub(ins.rest));
        if (words.length < 2) throw new BuildError(`${ins.cmd} requires at least two arguments, but only one was provided. Destination could not be determined.`);
        dest = words[words.length - 1];
        if (words.slice(0, -1).some((w) => /^[a-z]+:\/\//.test(w))) throw new BuildError(`${ins.cmd} from a URL is not supported by Silo's builder`);
        let srcs = words.slice(0, -1);
        if (ins.flags.from) {
          const stage = stages.find((x) => x.name === ins.flags.from) ?? stages[Number(ins.flags.from)];
          const image = stage?.image ?? (await st.getImage(ins.flags.from)).id;
          const tmp = await stepContainer(x, image, { CommandArgs: ['true'], Entrypoint: [] }, { network: 'none' });
          cleanup.push(tmp);
          // The sources come out of the stage's container through the compute service into a directory of the build.
          from = { rootfs: await mkdtemp(`${context.rootfs}.from-`), mounts: [] };
          staged.push(from.rootfs);
          srcs = await stageSources(x, tmp, srcs, from);
        }
        for (const src of srcs) paths.push(...(await expandSource(from, src)));
        hashed = await hashSources(from, paths);
      }
      // Metadata steps are keyed by their result (ARG values may change what the same text means).
      if (!layer) text += `\0${JSON.stringify(cfg)}`;
      if (layer === 'copy') text += `\0${JSON.stringify({ dest, flags: ins.flags, cfg })}`;
      const key = BuildCache.key(s.image, `${ins.cmd} ${text}`, hashed);
      const argv = ins.json ?? [...(cfg.Shell ?? DEFAULT_SHELL), ins.rest];
      const createdBy =
        layer === 'run' ? runCreatedBy(argv, argEnv)
        : layer === 'copy' ? `/bin/sh -c #(nop) ${ins.cmd} ${Object.entries(ins.flags).filter(([k]) => k !== 'from').map(([k, v]) => `--${k}=${v} `).join('')}sha256:${hashed} in ${dest} `
        : `/bin/sh -c #(nop)  ${ins.original}`;
      const cached = o.nocache ? undefined : x.cache.get(key);
      let hit = cached ? await st.getImage(cached).catch(() => undefined) : undefined;
      if (hit && sources.length && !sources.some((src) => begins(hit!, src))) hit = undefined;
      if (!hit && sources.length) {
        const src = continuing(await st.getImage(s.image), sources, createdBy);
        if (src) hit = await st.stepFrom(s.image, src.id, { config: cfg });
      }
      let next: string;
      if (hit) {
        out(` ---> Using cache\n`);
        next = hit.id;
      } else if (layer === 'run') {
        next = await runStep(x, s.image, argv, argEnv, cfg, o.resources, out, createdBy);
      } else if (layer === 'copy') {
        const step = await stepContainer(x, s.image, { CommandArgs: ['true'], Entrypoint: [] }, { network: 'none' });
        try {
          const owner = await ownerOf(x, step, ins.flags.chown);
          const chmod = ins.flags.chmod ? parseInt(ins.flags.chmod, 8) : undefined;
          await copyInto(x, from, paths, step, dest, cfg.WorkingDir ?? '/', { add: ins.cmd === 'ADD', owner, chmod });
          next = (await x.svc.compute.commit(step, { config: cfg, createdBy })).id;
        } finally {
          await x.svc.compute.remove(step, { force: true }).catch(() => {});
        }
      } else {
        next = (await st.configureImage(s.image, { config: cfg, createdBy })).id;
      }
      if (!hit) await x.cache.set(key, next);
      const img = await st.getImage(next);
      s.image = img.id;
      s.config = { ...img.config };
      out(` ---> ${shortId(next)}\n`);
    }
    if (!cur) throw new BuildError('no FROM instruction in the Dockerfile');
    let final = cur.image;
    if (Object.keys(o.labels).length) {
      const cfg = { ...cur.config, Labels: { ...(cur.config.Labels ?? {}), ...o.labels } };
      final = (await st.configureImage(final, { config: cfg, createdBy: '/bin/sh -c #(nop)  LABEL (build labels)' })).id;
    }
    return final;
  } finally {
    for (const id of cleanup) await x.svc.compute.remove(id, { force: true }).catch(() => {});
    for (const d of staged) await rm(d, { recursive: true, force: true }).catch(() => {});
  }
}

/** The instructions up to the end of the stage named `target`. */
function cutAtTarget(all: Instruction[], target: string): Instruction[] {
  const at = all.findIndex((i) => i.cmd === 'FROM' && new RegExp(`\\bAS\\s+${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'i').test(i.rest));
  if (at < 0) throw new BuildError(`failed to reach build target ${target} in Dockerfile`);
  const next = all.findIndex((i, n) => n > at && i.cmd === 'FROM');
  return next < 0 ? all : all.slice(0, next);
}

/** Tag the result with every -t name; returns them as docker prints them. */
export async function tagAll(x: Ctx, id: string, tags: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of tags) {
    const full = normalizeName(t);
    await x.svc.storage.tagImage(id, full);
    x.svc.events.publish('image', 'tag', id, { name: familiarName(full) });
    out.push(familiarName(full));
  }
  return out;
}
