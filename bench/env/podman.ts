// podman with everything in the bench's directories: storage (--root/--runroot), tmp dir, events file, CNI network
// config, and a network of its own (`<tag>` on bridge `<tag>p`, 10.232.0.0/24) as the default. runc, not crun (crun
// refuses this machine's hybrid cgroups), cgroupfs (no systemd), and a fixed nofile ulimit: root here lacks
// CAP_SYS_RESOURCE, so podman's default of raising the limit to the maximum would fail.

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { onCleanup } from '../lib/cleanup.js';
import { exec, tryExec, type ExecOpts, type Out } from '../lib/proc.js';

export const PODMAN_SUBNET = '10.232.0.0/24';

export interface Podman {
  /** Global flags, before the verb. */
  global: string[];
  /** Flags every `run` gets (the cgroup parent cannot be set globally). */
  runFlags: string[];
  env: NodeJS.ProcessEnv;
  root: string;
  cli(args: string[], o?: ExecOpts): Promise<Out>;
}

export async function setupPodman(tag: string, dir: string): Promise<Podman> {
  const root = join(dir, 'root');
  const runroot = join(dir, 'runroot');
  const netDir = join(dir, 'net');
  const tmp = join(dir, 'tmp');
  for (const d of [root, runroot, netDir, tmp]) await mkdir(d, { recursive: true });
  const conf = join(dir, 'containers.conf');
  await writeFile(conf, [
    '[containers]',
    // nproc too: podman would raise it to the maximum for root, which needs CAP_SYS_RESOURCE here.
    'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
    '[network]',
    'network_backend = "cni"',
    `network_config_dir = "${netDir}"`,
    `default_network = "${tag}"`,
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = "${join(dir, 'events.log')}"`,
    `tmp_dir = "${tmp}"`,
    '',
  ].join('\n'));
  const global = ['--root', root, '--runroot', runroot, '--tmpdir', tmp, '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--storage-driver', 'overlay'];
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const p: Podman = {
    global, env, root,
    runFlags: ['--cgroup-parent', `/${tag}-podman`],
    cli: (args, o = {}) => exec('podman', [...global, ...args], { env, ...o }),
  };
  onCleanup('podman state', async () => {
    await tryExec('podman', [...global, 'rm', '-af', '-t', '0'], { env, timeoutMs: 120_000 });
    await tryExec('podman', [...global, 'network', 'rm', '-f', tag], { env });
    await tryExec('ip', ['link', 'del', `${tag}p`]);
    // CNI keeps address leases and results outside podman's root.
    await rm(`/var/lib/cni/networks/${tag}`, { recursive: true, force: true });
  });
  // podman 4.3 cannot name a CNI bridge, so the network is written as the CNI config `podman network create` makes.
  await writeFile(join(netDir, `${tag}.conflist`), JSON.stringify(cniConfig(tag), null, 2));
  return p;
}

function cniConfig(tag: string) {
  const [net] = PODMAN_SUBNET.split('/');
  const gateway = net.replace(/\.0$/, '.1');
  return {
    cniVersion: '0.4.0',
    name: tag,
    plugins: [
      {
        type: 'bridge', bridge: `${tag}p`, isGateway: true, ipMasq: true, hairpinMode: true,
        ipam: { type: 'host-local', routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: PODMAN_SUBNET, gateway }]] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'firewall' },
      { type: 'tuning' },
    ],
  };
}
