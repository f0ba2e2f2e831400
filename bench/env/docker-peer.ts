// A dockerd of the bench's own beside a Silo daemon, for benches other than bench/run.ts (which brings up every peer
// in bench/setup.ts): its own tag (`silo-bench-xyz`, short enough for the bridge's name), data root, exec root,
// socket and cgroup parent, a bridge on DOCKER_PEER_CIDR (not bench/run.ts's 10.231.0.0/24, so both can run at once),
// no iptables rules nor ip_forward (`run --rm` needs no NAT; and docker's chains have fixed names a concurrent
// bench/run.ts dockerd shares, so no firewall snapshot is taken and restored here: that would delete its rules), and
// the same busybox loaded into it as bench/run.ts does. Every piece
// registers its teardown (lib/cleanup.ts); the caller runs cleanupAll() when it ends.

import { mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createBridge, startDockerd, type Dockerd } from './dockerd.js';
import { loadBusybox } from './image.js';
import { removeCgroups } from './cgroups.js';
import type { Silo } from './silo.js';
import { onCleanup } from '../lib/cleanup.js';
import { removeDir } from '../lib/dirs.js';
import { newTag } from '../setup.js';

export const DOCKER_PEER_CIDR = '10.233.0.1/24';
const STRAY = ['/etc/docker/key.json', '/run/docker', '/run/containerd'];

/** dockerd with busybox:latest loaded from the Silo daemon whose Docker API socket is `siloDockerSocket`. */
export async function startDockerPeer(siloDockerSocket: string, log: (m: string) => void): Promise<Dockerd> {
  const tag = newTag();
  for (const p of STRAY) if (!existsSync(p)) onCleanup(`stray ${p}`, () => rm(p, { recursive: true, force: true }));
  onCleanup('docker cgroups', async () => {
    for (const left of await removeCgroups(tag)) log(`cgroup left: ${left}`);
  });
  const dirs = { work: `/var/lib/${tag}-work`, data: `/var/lib/${tag}-docker`, run: `/run/${tag}-docker` };
  for (const d of Object.values(dirs)) {
    onCleanup(`dir ${d}`, () => removeDir(d));
    await mkdir(d, { recursive: true });
  }
  log(`starting dockerd (${tag})`);
  await createBridge(`${tag}d`, DOCKER_PEER_CIDR);
  const docker = await startDockerd(tag, dirs.data, dirs.run, true, false);
  await loadBusybox(dirs.work, { dockerSocket: siloDockerSocket } as Silo, docker, undefined);
  return docker;
}
