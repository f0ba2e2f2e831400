// A pod's utility VM has one virtiofs share (tag `pod`) for the mounts of all its containers, as Kata's shared dir:
// a directory on the host, `<run>/pod/share`, served by one virtiofsd. When a container of the pod is made, the host
// bind-mounts each of its mounts' sources (a directory or a single file) at `share/<ctr>/<i>`; the agent binds that
// path, under its mount of the share, onto the container's path. The share is a shared mount of its own (its own
// peer group) and virtiofsd's mount namespace a slave of the host's, so binds made after virtiofsd started show up
// in it, and so do their removals. A read-only mount is read-only on the host: its source is bound read-only in
// `<run>/pod/stage` (a private mount: nothing there propagates) and that read-only bind bound into the share, so the
// copy virtiofsd sees was read-only from the start (a remount would not propagate).
//
// Its guest RAM must be shared memory (virtiofsd maps it): a pod's VM restored from a template runs on a copy of the
// template's RAM file on tmpfs (`/dev/shm/<name>.ram`, only the pages the template holds copied; unlinked once QEMU
// has mapped it), mapped shared; the device is
// hot-added after the restore (the template has none). Everything else lives under the VM's run dir: the VM's delete
// takes the mounts down (lazily: virtiofsd may hold files open) before the directory goes, and finds them by
// /proc/self/mountinfo, so nothing a SIGKILL left at any point is missed.

import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { invalid, SiloError } from '../../common/errors.js';
import type { MappedDirectory } from '../backend.js';
import type { Qmp } from './qmp.js';
import type { Share } from './virtiofs.js';
import { hotAdd } from './qemu.js';

export const POD_TAG = 'pod';
const podDir = (run: string) => join(run, 'pod');
export const shareDir = (run: string) => join(podDir(run), 'share');
/** The copy of a template's RAM a VM with shares restored from a template runs on, on tmpfs (a run dir may be on
 *  disk), named after the VM's QEMU name (`<cgroup parent>-<id12>`): removed as soon as QEMU has it mapped, and by a
 *  delete if a crash came first. */
export const ramCopy = (name: string) => `/dev/shm/${name.replace(/\//g, '_')}.ram`;

/** The pod's share as a virtiofsd serves it (socket `fs0.sock`, so virtiofs.ts finds and stops it as any other). */
export const podShare = (run: string): Share => ({ tag: POD_TAG, socket: join(run, 'fs0.sock'), hostPath: shareDir(run), containerPath: '', readOnly: false, propagate: true });

/** Run a shell script (args as $1…), in the host cgroups `cgroupProcs` when given; rejects with its stderr. */
function sh(script: string, args: string[], cgroupProcs: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `for f in $SILO_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; ${script}`, 'sh', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', SILO_CGROUP_PROCS: cgroupProcs.join(' ') },
    });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('close', (c) => (c === 0 ? resolve() : reject(new Error(err.trim().split('\n').pop() || `exit ${c}`))));
  });
}

/**
 * Copy the template's RAM file to `dest` on tmpfs: `cp --sparse=always` walks the file's data
 * (SEEK_DATA/SEEK_HOLE), so only what the template holds is copied and the holes stay holes. Run in the VM's host
 * cgroups: the copy's pages are its guest RAM and are charged there.
 */
export async function copyTemplateRam(template: string, dest: string, cgroupProcs: string[]): Promise<void> {
  await sh('exec cp --sparse=always -- "$1" "$2"', [join(template, 'ram'), dest], cgroupProcs);
}

/** The share's directories and mounts (idempotent): `pod` a private bind of itself, `pod/share` a shared one. */
export async function preparePodShare(run: string): Promise<void> {
  await mkdir(shareDir(run), { recursive: true, mode: 0o700 });
  await mkdir(join(podDir(run), 'stage'), { mode: 0o700 }).catch(() => {});
  if ((await mountsUnder(podDir(run))).length) return;
  await sh('mount --bind "$1" "$1" && mount --make-private "$1" && mount --bind "$2" "$2" && mount --make-private "$2" && mount --make-shared "$2"', [podDir(run), shareDir(run)]);
}

/** Whether the VM of run dir `run` has a pod share. */
export const hasPodShare = async (run: string) => (await mountsUnder(shareDir(run))).length > 0;

/** QEMU's side, after a restore: the chardev to virtiofsd and the device (named as a cold boot's `i`th), on a free slot of
 *  the hot-plug bridge from the last one down (disks take them from the first one up). The guest finds it through ACPI in a moment
 *  (the agent's mount waits for its tag). Used for a pod's share and for a single container's binds alike. */
export async function hotAddShare(qmp: Qmp, share: Share, i: number): Promise<void> {
  await qmp.execute('chardev-add', { id: `fs${i}`, backend: { type: 'socket', data: { addr: { type: 'unix', data: { path: share.socket } }, server: false } } });
  await hotAdd(qmp, { driver: 'vhost-user-fs-pci', id: `fsd${i}`, chardev: `fs${i}`, tag: share.tag }, true);
}

/**
 * Bind the sources of a container's mounts into the share at `<ctr>/<i>`; returns the agent's `pbind` values
 * (`<ctr>/<i>:<0|1>:<container path>`). A read-only one is bound read-only in the stage first, then into the share.
 */
export async function bindMounts(run: string, ctr: number, mounts: MappedDirectory[]): Promise<[string, string][]> {
  const dir = join(shareDir(run), String(ctr));
  await mkdir(dir, { mode: 0o700 });
  const stage = join(podDir(run), 'stage');
  const out: [string, string][] = [];
  for (const [i, m] of mounts.entries()) {
    const st = await stat(m.HostPath).catch(() => undefined);
    if (!st) throw invalid(`mount source ${m.HostPath} does not exist`);
    const isDir = st.isDirectory();
    const at = join(dir, String(i));
    const staged = join(stage, `${ctr}-${i}`);
    // The mount point has the source's kind: a directory, or an empty file for a single file.
    const mk = isDir ? 'mkdir -p "$1"' : ': > "$1"';
    // The staged bind is taken down by name and its mount point removed without recursion: were the unmount to fail,
    // nothing of the host's source could be deleted through it.
    if (m.ReadOnly) {
      await sh(`${mk} && ${isDir ? 'mkdir -p "$2"' : ': > "$2"'} && mount --rbind "$3" "$2" && mount -o remount,bind,ro "$2" && mount --bind "$2" "$1"; rc=$?; umount -l "$2" 2>/dev/null; rmdir "$2" 2>/dev/null || rm -f "$2"; exit $rc`, [at, staged, m.HostPath]);
    } else {
      await sh(`${mk} && mount --rbind "$2" "$1"`, [at, m.HostPath]);
    }
    out.push(['pbind', `${ctr}/${i}:${m.ReadOnly ? 1 : 0}:${m.ContainerPath}`]);
  }
  return out;
}

/** Take a container's binds out of the share (lazily: virtiofsd may hold their files) and its directory with them. */
export async function unbindMounts(run: string, ctr: number): Promise<void> {
  const dir = join(shareDir(run), String(ctr));
  await unmountAll(dir);
  await rm(dir, { recursive: true, force: true });
}

/** Everything of the share: its mounts (deepest first) and directories, the RAM copy of QEMU `name`. Idempotent;
 *  the VM's run dir may then be removed (never before: a bound host directory would be emptied). */
export async function removePodShare(run: string, name: string): Promise<void> {
  // Made before anything is mounted in it: no directory, no mount (and no read of mountinfo for most VMs).
  if (await stat(podDir(run)).then(() => true, () => false)) await unmountAll(podDir(run));
  await rm(podDir(run), { recursive: true, force: true });
  await rm(ramCopy(name), { force: true });
}

async function unmountAll(under: string): Promise<void> {
  const points = await mountsUnder(under);
  if (!points.length) return;
  // Deepest first; lazily, so a file virtiofsd holds open does not keep a mount (it goes when virtiofsd lets go). One
  // already gone is no error (another removal of the same binds, such as a recovery's, got there first): what
  // counts is that none is left, checked below.
  await sh('for m; do umount -l "$m" 2>/dev/null; done; exit 0', points.sort((a, b) => b.length - a.length));
  const left = await mountsUnder(under);
  if (left.length) throw new SiloError('Internal', 'SILO_VM_SHARE', `mounts left under ${under}: ${left.join(', ')}`);
}

/** Mount points at or under `dir` in the daemon's mount namespace. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const at = line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (at && (at === dir || at.startsWith(`${dir}/`))) out.push(at);
  }
  return [...new Set(out)];
}
