// Bind mounts and volumes of a vm-isolated container, shared into its guest by virtiofs: one virtiofsd (QEMU's
// vhost-user-fs device backend) per mount, each serving one host directory on a socket in the VM's run dir, each a
// vhost-user-fs-pci device of the VM with the tag `m<i>` that the agent mounts at the container path (docs/vm.md).
//
// virtiofsd is started detached (its own session and process group, never waited on), so a daemon SIGKILL leaves it
// serving QEMU, which is re-adopted with it; it is found again by its command line (the socket path in the VM's run
// dir), so a daemon killed between its start and any record of it still leaves nothing the next delete misses.
// A read-only mount is enforced on the host: virtiofsd runs in a mount namespace of its own in which its directory is
// a read-only bind (nothing is mounted in the host's namespace); the guest mounts it read-only too.

import { spawn } from 'node:child_process';
import { access, constants, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { invalid, SiloError } from '../../common/errors.js';
import type { MappedDirectory } from '../backend.js';

/** PCI slots on the root complex are what bounds it: the disk slots, the NIC and the serial controller use 10. */
export const MAX_SHARES = 8;
/** QEMU 7.2's virtiofsd (in qemu-system-common, a dependency of qemu-system-x86); Debian's later `virtiofsd` package. */
const CANDIDATES = ['/usr/lib/qemu/virtiofsd', '/usr/libexec/virtiofsd'];
/** Where QEMU 7.2's virtiofsd keeps a lock file per socket (`/` of the socket's path as `.`); it never removes it. */
const LOCK_DIR = '/var/run/virtiofsd';
/** In a VM's run dir while it may have virtiofsd processes. */
const MARK = 'shares';

export const missingVirtiofsd = 'vm isolation shares bind mounts and volumes through virtiofsd: apt-get install qemu-system-common (or virtiofsd)';

export interface Share {
  tag: string;
  socket: string;
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
  /** A pod's share (podshare.ts): virtiofsd's mount namespace is the host's slave, so binds made later reach it. */
  propagate?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The shares of a container's mounts, in its run dir `dir`; refuses what virtiofs cannot be (one line each). */
export async function sharesOf(dir: string, mounts: MappedDirectory[]): Promise<Share[]> {
  if (mounts.length > MAX_SHARES) throw invalid(`vm isolation takes at most ${MAX_SHARES} bind mounts and volumes`);
  return Promise.all(
    mounts.map(async (m, i) => {
      // virtiofsd serves a directory tree; a single file would need its directory shared, more than was asked.
      const st = await stat(m.HostPath).catch(() => undefined);
      if (!st?.isDirectory()) throw invalid(`vm isolation shares directories only: ${m.HostPath} is not a directory`);
      return { tag: `m${i}`, socket: join(dir, `fs${i}.sock`), hostPath: m.HostPath, containerPath: m.ContainerPath, readOnly: m.ReadOnly === true };
    }),
  );
}

export async function findVirtiofsd(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  for (const p of env.SILO_VM_VIRTIOFSD ? [env.SILO_VM_VIRTIOFSD] : CANDIDATES) {
    if (await access(p, constants.X_OK).then(() => true, () => false)) return p;
  }
  throw new SiloError('FailedPrecondition', 'SILO_VM_NO_VIRTIOFSD', missingVirtiofsd);
}

/** QEMU's side: each socket a vhost-user-fs device on the root complex, tagged for the agent. */
export function qemuShareArgs(shares: Share[]): string[] {
  return shares.flatMap((s, i) => ['-chardev', `socket,id=fs${i},path=${s.socket}`, '-device', `vhost-user-fs-pci,id=fsd${i},chardev=fs${i},tag=${s.tag},bus=pcie.0`]);
}

/** The agent's side: `bind=<tag>:<0|1 read-only>:<path>` in the ROOT request. */
export function agentShareArgs(shares: Share[]): [string, string][] {
  return shares.map((s) => ['bind', `${s.tag}:${s.readOnly ? 1 : 0}:${s.containerPath}`]);
}

/**
 * Start one virtiofsd per share, each in the host cgroups `cgroupProcs` (the VM's), and wait until each listens.
 * Rejects with virtiofsd's own last line when one exits instead; what did start is the caller's to stop (stopShares).
 */
export async function startShares(virtiofsd: string, dir: string, shares: Share[], cgroupProcs: string[]): Promise<void> {
  // The shell joins the cgroups, makes a read-only share's directory read-only in this private mount namespace (the
  // host's is untouched), then becomes virtiofsd: every process of it is in them from the start.
  // Marked before the first start, so a delete after any crash knows to look for them (and others need not).
  await writeFile(join(dir, MARK), '');
  const script = 'for f in $SILO_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; if [ "$1" = ro ]; then mount --bind "$2" "$2" && mount -o remount,bind,ro "$2" || exit 125; fi; shift 2; exec "$@"';
  await Promise.all(
    shares.map(async (s, i) => {
      const log = await open(join(dir, `fs${i}.log`), 'w');
      try {
        const args = [`--socket-path=${s.socket}`, '-o', `source=${s.hostPath}`, '-o', 'cache=auto', '-o', 'sandbox=namespace', '-o', 'log_level=warn', '-f'];
        const child = spawn('unshare', ['-m', '--propagation', s.propagate ? 'slave' : 'private', '--', '/bin/sh', '-c', script, 'sh', s.readOnly ? 'ro' : 'rw', s.hostPath, virtiofsd, ...args], {
          detached: true,
          stdio: ['ignore', log.fd, log.fd],
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SILO_CGROUP_PROCS: cgroupProcs.join(' ') },
        });
        let exited: number | null | undefined;
        child.once('exit', (c) => (exited = c));
        child.once('error', () => (exited = -1));
        child.unref();
        for (let t = 0; !(await stat(s.socket).then((x) => x.isSocket(), () => false)); t += 10) {
          if (exited !== undefined || t > 10_000) {
            const why = (await readFile(join(dir, `fs${i}.log`), 'utf8').catch(() => '')).trim().split('\n').pop();
            throw new SiloError('Internal', 'SILO_VM_VIRTIOFSD', `virtiofsd for ${s.hostPath} did not start: ${why || (exited === undefined ? 'no socket in 10 s' : `exit ${exited}`)}`);
          }
          await sleep(10);
        }
      } finally {
        await log.close();
      }
    }),
  );
}

/** The virtiofsd processes serving the shares of run dir `dir` (their command lines name its sockets). */
export async function sharePids(dir: string): Promise<number[]> {
  const needle = `--socket-path=${dir}/fs`;
  const out: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) out.push(Number(p));
  }
  return out;
}

/** SIGKILL every virtiofsd of `dir`, wait until they are gone, remove their sockets and lock files. Idempotent. */
export async function stopShares(dir: string): Promise<void> {
  if (!(await stat(join(dir, MARK)).then(() => true, () => false))) return;
  let pids = await sharePids(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 250 && pids.length; i++) {
    await sleep(20);
    pids = await sharePids(dir);
  }
  const locks = await readdir(LOCK_DIR).catch(() => [] as string[]);
  const prefix = `${dir}/fs`.replace(/\//g, '.');
  await Promise.all(locks.filter((f) => f.startsWith(prefix) && f.endsWith('.sock.pid')).map((f) => rm(join(LOCK_DIR, f), { force: true })));
  for (const f of await readdir(dir).catch(() => [] as string[])) if (/^fs\d+\.(sock|log)$/.test(f)) await rm(join(dir, f), { force: true });
  await rm(join(dir, MARK), { force: true });
}
