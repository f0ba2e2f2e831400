// What the OCI spec needs from the host and the container's root, read here so spec.ts stays pure: device nodes,
// a localhost seccomp profile, supplementary groups by name.

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { invalid } from '../../common/errors.js';
import type { Device } from '../spec/schema.js';
import type { BlockIO } from '../backend.js';
import type { OciDevice } from './spec.js';
import { parseGroup, readRootfsEtcFile } from '../user.js';

/** Linux dev_t → major/minor (glibc's encoding). */
const major = (d: number) => ((d >>> 8) & 0xfff) | (Math.floor(d / 2 ** 32) & ~0xfff);
const minor = (d: number) => (d & 0xff) | ((d >>> 12) & ~0xff);

async function node(pathOnHost: string, pathInContainer: string, access: string): Promise<OciDevice | undefined> {
  const st = await stat(pathOnHost).catch(() => undefined);
  if (!st || !(st.isCharacterDevice() || st.isBlockDevice())) return undefined;
  return {
    path: pathInContainer, type: st.isCharacterDevice() ? 'c' : 'b', major: major(st.rdev), minor: minor(st.rdev),
    fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid, access,
  };
}

/** Standard nodes runc makes itself, and the container's own pty and console: never copied from the host. */
const OWN = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/console', '/dev/ptmx']);
const SKIP_DIRS = new Set(['/dev/pts', '/dev/shm', '/dev/mqueue']);

async function hostDevices(dir = '/dev', out: OciDevice[] = []): Promise<OciDevice[]> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name);
    if (e.isDirectory() && !SKIP_DIRS.has(p)) await hostDevices(p, out);
    else if ((e.isCharacterDevice() || e.isBlockDevice()) && !OWN.has(p)) {
      const d = await node(p, p, 'rwm');
      if (d) out.push(d);
    }
  }
  return out;
}

/** The device nodes a container gets: the caller's, or every host device when privileged (docker's rule). */
export async function resolveDevices(devices: Device[] | undefined, privileged: boolean): Promise<OciDevice[]> {
  const out = privileged ? await hostDevices() : [];
  for (const d of devices ?? []) {
    const n = await node(d.PathOnHost, d.PathInContainer ?? d.PathOnHost, d.Permissions ?? 'rwm');
    if (!n) throw invalid(`error gathering device information while adding device ${JSON.stringify(d.PathOnHost)}: not a device node`);
    const i = out.findIndex((x) => x.path === n.path);
    if (i >= 0) out.splice(i, 1);
    out.push(n);
  }
  return out;
}

/** OCI linux.resources.blockIO from the spec's BlockIO: each device node's major and minor, read now. */
export async function resolveBlockIO(b: BlockIO | undefined): Promise<Record<string, { major: number; minor: number; rate: number }[]> | undefined> {
  if (!b) return undefined;
  const keys = { ReadBps: 'throttleReadBpsDevice', WriteBps: 'throttleWriteBpsDevice', ReadIops: 'throttleReadIOPSDevice', WriteIops: 'throttleWriteIOPSDevice' } as const;
  const out: Record<string, { major: number; minor: number; rate: number }[]> = {};
  for (const [k, oci] of Object.entries(keys)) {
    for (const d of b[k as keyof typeof keys] ?? []) {
      const st = await stat(d.Path).catch(() => undefined);
      if (!st?.isBlockDevice()) throw invalid(`block I/O limit: ${d.Path} is not a block device`);
      (out[oci] ??= []).push({ major: major(st.rdev), minor: minor(st.rdev), rate: d.Rate });
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/** An OCI seccomp profile from a host file (the CRI's localhost/<path>). */
export async function loadSeccompProfile(path: string): Promise<unknown> {
  let p: { defaultAction?: unknown };
  try {
    p = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    throw invalid(`seccomp profile ${path}: not a readable JSON file`);
  }
  if (typeof p !== 'object' || p === null || typeof p.defaultAction !== 'string') throw invalid(`seccomp profile ${path}: no defaultAction`);
  return p;
}

/** Group names and ids → gids, names looked up in the container's /etc/group. */
export async function supplementalGids(rootfs: string, groups: (number | string)[] | undefined): Promise<number[]> {
  if (!groups?.length) return [];
  const table = groups.some((g) => typeof g === 'string' && !/^\d+$/.test(g)) ? parseGroup(await readRootfsEtcFile(rootfs, 'group')) : [];
  return groups.map((g) => {
    if (typeof g === 'number') return g;
    if (/^\d+$/.test(g)) return Number(g);
    const e = table.find((x) => x.name === g);
    if (!e) throw invalid(`Unable to find group ${g}: no matching entries in group file`); // dockerd's words for --group-add
    return e.gid;
  });
}
