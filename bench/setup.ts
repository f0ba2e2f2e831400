// Brings up everything the cases measure, each piece registering its own teardown first: the firewall snapshot (undone
// last), the dirs, Silo's daemon, dockerd on its bridge, podman, the busybox image in each, and runc's bundle.
// A peer that fails to come up is recorded and its rows become n/a; Silo failing to come up ends the run.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createBridge, DOCKER_BRIDGE_CIDR, startDockerd, type Dockerd } from './env/dockerd.js';
import { snapshotFirewall } from './env/firewall.js';
import { loadBusybox, prepareBundle, type ImageLoad } from './env/image.js';
import { setupPodman, type Podman } from './env/podman.js';
import { startSilo, type Silo } from './env/silo.js';
import { removeCgroups } from './env/cgroups.js';
import { onCleanup } from './lib/cleanup.js';
import { removeDir } from './lib/dirs.js';
import { errText, tryExec } from './lib/proc.js';

const STRAY = ['/etc/docker/key.json', '/run/docker', '/run/containerd', '/var/lib/containers', '/var/lib/cni', '/run/containers', '/run/libpod'];

export interface Env {
  tag: string;
  dirs: { work: string; dockerData: string; dockerRun: string; podman: string; runc: string; runcState: string };
  silo: Silo;
  docker?: Dockerd;
  podman?: Podman;
  bundle?: string;
  image?: ImageLoad;
  firewallNotes: string[];
}

/** `silo-bench-` + 3 of [a-z0-9]: with a one-letter suffix it still fits a link name (15 characters). */
export function newTag(): string {
  const a = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return 'silo-bench-' + [...randomBytes(3)].map((b) => a[b % a.length]).join('');
}

export async function setup(tag: string, siloBin: string, errors: string[], log: (m: string) => void): Promise<Env> {
  const env: Env = {
    tag,
    dirs: {
      work: `/var/lib/${tag}-work`,
      dockerData: `/var/lib/${tag}-docker`,
      dockerRun: `/run/${tag}-docker`,
      podman: `/var/lib/${tag}-podman`,
      runc: `/var/lib/${tag}-runc`,
      runcState: `/run/${tag}-runc`,
    },
    firewallNotes: [],
  } as unknown as Env;
  // Host paths the peers create whatever their flags (docker's trust key and plugin dir, containerd's shim sockets,
  // podman's blob cache, CNI's leases): removed at the end if they did not exist before the run.
  for (const p of STRAY) if (!existsSync(p)) onCleanup(`stray ${p}`, () => rm(p, { recursive: true, force: true }));
  const fw = await snapshotFirewall();
  onCleanup('firewall', async () => env.firewallNotes.push(...(await fw.restore())));
  onCleanup('cgroups', async () => {
    for (const left of await removeCgroups(tag)) errors.push(`cgroup left: ${left}`);
  });
  for (const d of Object.values(env.dirs)) {
    onCleanup(`dir ${d}`, () => removeDir(d));
    await mkdir(d, { recursive: true });
  }

  log(`starting silo daemon (${tag})`);
  env.silo = await startSilo(tag, siloBin, `/var/lib/${tag}`, `/run/${tag}`);

  try {
    log('starting dockerd');
    await createBridge(`${tag}d`, DOCKER_BRIDGE_CIDR);
    env.docker = await startDockerd(tag, env.dirs.dockerData, env.dirs.dockerRun, true);
  } catch (e) {
    errors.push(`dockerd: ${errText(e)}`);
    log(`dockerd: ${errText(e)}`);
  }
  try {
    log('setting up podman');
    env.podman = await setupPodman(tag, env.dirs.podman);
  } catch (e) {
    errors.push(`podman: ${errText(e)}`);
    log(`podman: ${errText(e)}`);
  }

  log('loading busybox into every engine');
  env.image = await loadBusybox(env.dirs.work, env.silo, env.docker, env.podman);
  try {
    env.bundle = await prepareBundle(env.dirs.runc, env.image.rootfsTar, `${tag}-runc`);
    // runc deletes the container when `run` returns; a run cut short leaves state only under our --root.
    onCleanup('runc containers', async () => {
      const list = JSON.parse((await tryExec('runc', ['--root', env.dirs.runcState, 'list', '--format', 'json'])).stdout || 'null') ?? [];
      for (const c of list as Array<{ id: string }>) await tryExec('runc', ['--root', env.dirs.runcState, 'delete', '--force', c.id]);
    });
  } catch (e) {
    errors.push(`runc bundle: ${errText(e)}`);
  }
  return env;
}
