// The same busybox in every engine. Preferred: `docker save` of Silo's own busybox:latest through Silo's Docker API,
// then `docker load` / `podman load` of that archive. Until that API serves save, the same root filesystem tar Silo
// builds its base image from (src/storage/baseimage.ts: fixed mtimes, owners and order, so the same layer digest) is
// imported with the same config (CMD sh, PATH). runc gets that tar unpacked as a bundle's rootfs.

import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BASE_CHANGES, busyboxTar } from '../../src/storage/baseimage.js';
import { errText, exec, tryExec } from '../lib/proc.js';
import type { Dockerd } from './dockerd.js';
import type { Podman } from './podman.js';
import type { Silo } from './silo.js';
import { DOCKER_CLI } from './dockerd.js';

export interface ImageLoad {
  method: string;
  rootfsTar: string;
  /** Layer digests per engine, to show it is the same filesystem everywhere. */
  layers: Record<string, string>;
}

export async function writeRootfsTar(path: string): Promise<void> {
  await pipeline(await busyboxTar(), createWriteStream(path));
}

export async function loadBusybox(dir: string, silo: Silo, docker: Dockerd | undefined, podman: Podman | undefined): Promise<ImageLoad> {
  const rootfs = join(dir, 'busybox-rootfs.tar');
  await writeRootfsTar(rootfs);
  const saved = join(dir, 'busybox-image.tar');
  let method: string;
  const viaSilo = await tryExec(DOCKER_CLI, ['-H', `unix://${silo.dockerSocket}`, 'save', '-o', saved, 'busybox:latest'], { timeoutMs: 30_000 });
  if (viaSilo.code === 0) {
    method = "`docker save busybox:latest` through Silo's Docker API, then `docker load` / `podman load`";
    if (docker) await docker.cli(['load', '-i', saved], { timeoutMs: 60_000 });
    if (podman) await podman.cli(['load', '-i', saved], { timeoutMs: 60_000 });
  } else {
    method = `Silo's base-image root filesystem tar (src/storage/baseimage.ts) imported with the same config (\`docker save\` through Silo's Docker API: ${errText(viaSilo.stderr.trim() || `exit ${viaSilo.code}`)})`;
    const changes = BASE_CHANGES.flatMap((c) => ['--change', c]);
    if (docker) await docker.cli(['import', ...changes, rootfs, 'busybox:latest'], { timeoutMs: 60_000 });
    if (podman) await podman.cli(['import', ...changes, rootfs, 'busybox:latest'], { timeoutMs: 60_000 });
  }
  const layers: Record<string, string> = {};
  const first = (s: string) => s.trim().replace(/^\[|\]$/g, '').split(' ')[0];
  if (docker) layers.docker = first((await docker.cli(['image', 'inspect', '-f', '{{.RootFS.Layers}}', 'busybox:latest'])).stdout);
  if (podman) layers.podman = first((await podman.cli(['image', 'inspect', '-f', '{{.RootFS.Layers}}', 'busybox:latest'])).stdout);
  return { method, rootfsTar: rootfs, layers };
}

/** A runc bundle: the rootfs tar unpacked, and `runc spec`'s starter config running `true` in its own cgroup. */
export async function prepareBundle(dir: string, rootfsTar: string, cgroupParent: string): Promise<string> {
  const bundle = join(dir, 'bundle');
  await mkdir(join(bundle, 'rootfs'), { recursive: true });
  await exec('tar', ['-C', join(bundle, 'rootfs'), '-xf', rootfsTar]);
  await exec('runc', ['spec', '--bundle', bundle]);
  const cfgPath = join(bundle, 'config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
  cfg.process.terminal = false;
  cfg.process.args = ['true'];
  cfg.linux.cgroupsPath = `/${cgroupParent}/runc`;
  await writeFile(cfgPath, JSON.stringify(cfg, null, 2));
  return bundle;
}
