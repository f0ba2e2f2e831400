// Resolve a docker-style user string ("name", "uid", "uid:gid", "name:group") against the image's /etc/passwd and
// /etc/group. Parsing is pure (unit-tested); reading the files refuses symlinks so an image cannot point us at
// the host's files.

import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { invalid } from '../common/errors.js';

export interface PasswdEntry { name: string; uid: number; gid: number; home: string }
export interface GroupEntry { name: string; gid: number; members: string[] }
export interface ResolvedUser { uid: number; gid: number; additionalGids: number[]; home: string; name?: string }

const isNum = (s: string) => /^[0-9]+$/.test(s);

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7 || !isNum(f[2]) || !isNum(f[3])) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !isNum(f[2])) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: f[3] ? f[3].split(',').filter(Boolean) : [] });
  }
  return out;
}

/** Pure resolution; passwd/group are the file contents (empty when the image lacks them). */
export function resolveUser(spec: string, passwdText: string, groupText: string): ResolvedUser {
  const users = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  const [userPart, groupPart] = (spec || '0').split(':', 2) as [string, string | undefined];
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNum(userPart)) {
    uid = Number(userPart);
    entry = users.find((u) => u.uid === uid);
  } else {
    entry = users.find((u) => u.name === userPart);
    if (!entry) throw invalid(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  if (uid > 0xfffffffe) throw invalid(`uid ${userPart} is out of range`);
  let gid = entry ? entry.gid : 0;
  if (groupPart !== undefined && groupPart !== '') {
    if (isNum(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalid(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  // The supplementary groups are the primary group (docker and containerd both list it, so `id` shows groups=<gid>)
  // and, unless a group was forced, the groups that name the user as a member.
  const additionalGids = [
    gid,
    ...(entry && (groupPart === undefined || groupPart === '') ? groups.filter((g) => g.members.includes(entry!.name)).map((g) => g.gid) : []),
  ];
  const home = entry?.home || (uid === 0 ? '/root' : '/');
  return { uid, gid, additionalGids: [...new Set(additionalGids)], home, name: entry?.name };
}

/**
 * Read <rootfs>/etc/<file> without following symlinks; '' when absent. Synchronously: two small files of the image at
 * each create, where each asynchronous step (lstat, open, fstat, read, close) was a thread-pool round trip.
 */
export async function readRootfsEtcFile(rootfs: string, file: 'passwd' | 'group'): Promise<string> {
  const etc = join(rootfs, 'etc');
  const st = lstatSync(etc, { throwIfNoEntry: false });
  if (!st) return '';
  if (st.isSymbolicLink()) throw invalid(`refusing ${etc}: it is a symlink`);
  let fd: number;
  try {
    fd = openSync(join(etc, file), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return '';
    if (code === 'ELOOP') throw invalid(`refusing /etc/${file} of the image: it is a symlink`);
    throw e;
  }
  try {
    const f = fstatSync(fd);
    if (!f.isFile()) throw invalid(`refusing /etc/${file} of the image: not a regular file`);
    if (f.size > 16 * 1024 * 1024) throw invalid(`/etc/${file} of the image is too large`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export async function resolveUserInRootfs(rootfs: string, spec: string): Promise<ResolvedUser> {
  const [p, g] = await Promise.all([readRootfsEtcFile(rootfs, 'passwd'), readRootfsEtcFile(rootfs, 'group')]);
  return resolveUser(spec, p, g);
}

/** uid → name map for process listings, from the text of a passwd file. */
export function uidNamesOf(passwd: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const u of parsePasswd(passwd)) if (!m.has(u.uid)) m.set(u.uid, u.name);
  return m;
}
