// A running container's root as a Tree for copies, without pausing it: the small helper inroot/inroot.c opens each
// parent directory inside the container's own root (/proc/<pid>/root: its mounts and volumes) with
// openat2(RESOLVE_IN_ROOT), and this side names only the final component below /proc/<helper>/fd/<n>, never
// following it. A process inside that swaps a component for a symlink meanwhile can only lead the copy elsewhere
// inside the container (CVE-2018-15664). The helper is built from its source on first use if setup has not.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants as C, type Stats } from 'node:fs';
import { access, lchown, lstat, lutimes, mkdir, open, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { run } from '../../common/exec.js';
import { badState, SiloError } from '../../common/errors.js';
import type { Tree } from '../archive.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/src/compute/process → the repository. */
const REPO = resolve(here, '../../../..');
export const INROOT_SOURCE = resolve(REPO, 'src/compute/process/inroot/inroot.c');
export const INROOT_BINARY = process.env.SILO_INROOT ?? resolve(REPO, 'build/inroot/silo-inroot');

let building: Promise<string> | undefined;

/** The helper's path, compiled from its source once if it is not there (setup builds it too). */
function helper(): Promise<string> {
  building ??= (async () => {
    if (await access(INROOT_BINARY).then(() => true, () => false)) return INROOT_BINARY;
    await mkdir(dirname(INROOT_BINARY), { recursive: true });
    const tmp = `${INROOT_BINARY}.${process.pid}.tmp`;
    const r = await run('cc', ['-O2', '-o', tmp, INROOT_SOURCE], { allowFail: true });
    if (r.code !== 0) {
      await rm(tmp, { force: true });
      throw new SiloError('Internal', 'SILO_INROOT_MISSING', 'copies into running containers need the silo-inroot helper: run scripts/setup.sh (it needs a C compiler)');
    }
    await rename(tmp, INROOT_BINARY);
    return INROOT_BINARY;
  })().catch((e) => {
    building = undefined;
    throw e;
  });
  return building;
}

const errno = (n: number, what: string) => Object.assign(new Error(`${what}: errno ${n}`), { code: ERRNO[n] ?? `E${n}`, errno: -n });
const ERRNO: Record<number, string> = { 2: 'ENOENT', 13: 'EACCES', 17: 'EEXIST', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 30: 'EROFS', 36: 'ENAMETOOLONG', 39: 'ENOTEMPTY', 40: 'ELOOP' };
const hex = (s: string) => Buffer.from(s).toString('hex');

/** One helper process for one copy; close() ends it. */
export class InRoot {
  private constructor(
    private readonly p: ChildProcessWithoutNullStreams,
    private readonly pid: number,
    private readonly lines: AsyncIterator<string>,
  ) {}

  /** `root`: the container's root as its init process sees it, /proc/<pid>/root. */
  static async open(root: string): Promise<InRoot> {
    const p = spawn(await helper(), [root], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', () => {});
    const lines = createInterface({ input: p.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    const m = /^ready (\d+)$/.exec(first.done ? '' : first.value);
    if (!m) {
      p.kill('SIGKILL');
      throw badState(`cannot reach the container's root: ${stderr.trim() || 'the helper did not start'}`);
    }
    return new InRoot(p, Number(m[1]), lines);
  }

  private chain: Promise<unknown> = Promise.resolve();

  /** One request, one answer; requests are serialised. */
  private ask(line: string): Promise<number> {
    const next = this.chain.then(async () => {
      this.p.stdin.write(line + '\n');
      const r = await this.lines.next();
      if (r.done) throw badState('the copy helper ended');
      const [kind, n] = r.value.split(' ');
      if (kind === 'ok') return Number(n);
      throw errno(Number(n), line.split(' ')[0]);
    });
    this.chain = next.catch(() => {});
    return next;
  }

  /** An O_PATH fd of `cpath` opened inside the root (symlinks followed there unless `nofollow`). */
  private openPath(cpath: string, o: { nofollow?: boolean; dir?: boolean } = {}): Promise<number> {
    return this.ask(`O ${hex(cpath)} ${o.nofollow ? 1 : 0} ${o.dir ? 1 : 0}`);
  }

  private closeFd(fd: number): Promise<unknown> {
    return this.ask(`C ${fd}`).catch(() => {});
  }

  private fdPath(fd: number): string {
    return `/proc/${this.pid}/fd/${fd}`;
  }

  /** Run `fn` with the host path of `cpath`'s final component below its parent opened inside the root. */
  private async at<T>(cpath: string, fn: (path: string, parentFd: number, name: string) => Promise<T>): Promise<T> {
    const parent = posix.dirname(cpath);
    const name = posix.basename(cpath);
    if (!name || name === '.' || name === '..') throw badState(`cannot name ${cpath} inside the container`);
    const fd = await this.openPath(parent, { dir: true });
    try {
      return await fn(`${this.fdPath(fd)}/${name}`, fd, name);
    } finally {
      await this.closeFd(fd);
    }
  }

  /** The directory `cpath` itself (not followed if it is a symlink: then ELOOP/ENOTDIR). */
  private async dir<T>(cpath: string, fn: (path: string) => Promise<T>): Promise<T> {
    const fd = await this.openPath(cpath, { dir: true, nofollow: cpath !== '/' });
    try {
      return await fn(this.fdPath(fd));
    } finally {
      await this.closeFd(fd);
    }
  }

  /**
   * Bind-mount `cpath`, resolved inside the root (its symlinks followed there, never above it), at the host path
   * `target`, made here as a directory or an empty file like the source. The helper mounts the fd it resolved, so a
   * symlink swapped in after any check cannot change what is mounted. unbind() detaches it.
   */
  async bindAt(cpath: string, target: string): Promise<void> {
    const fd = await this.openPath(cpath);
    try {
      if ((await stat(this.fdPath(fd))).isDirectory()) await mkdir(target, { mode: 0o700 });
      else await writeFile(target, '', { flag: 'wx', mode: 0o600 });
      await this.ask(`M ${fd} ${hex(target)}`);
    } finally {
      await this.closeFd(fd);
    }
  }

  async unbind(target: string): Promise<void> {
    await this.ask(`U ${hex(target)}`);
  }

  tree(): Tree {
    const nullIfGone = (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? null : Promise.reject(e));
    const erofs = (e: NodeJS.ErrnoException, cpath: string) => {
      throw e.code === 'EROFS' ? badState(`cannot write to ${cpath}: it is on a read-only mount`) : e;
    };
    return {
      lstat: (c): Promise<Stats | null> => (c === '/' ? this.dir(c, (p) => stat(p)) : this.at(c, (p) => lstat(p))).catch(nullIfGone),
      readlink: (c) => this.at(c, (p) => readlink(p)),
      readdir: (c) => this.dir(c, (p) => readdir(p)),
      openRead: (c) => this.at(c, (p) => open(p, C.O_RDONLY | C.O_NOFOLLOW)),
      createFile: (c, mode) => this.at(c, (p) => open(p, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode)).catch((e) => erofs(e, c)),
      mkdir: (c, mode) => this.at(c, async (p) => void (await mkdir(p, { mode }))).catch((e) => erofs(e, c)),
      chmodDir: (c, mode) =>
        this.at(c, async (p) => {
          const fh = await open(p, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
          try {
            await fh.chmod(mode);
          } finally {
            await fh.close();
          }
        }).catch((e) => erofs(e, c)),
      lchown: (c, uid, gid) => this.at(c, (p) => lchown(p, uid, gid)).catch((e) => erofs(e, c)),
      symlink: (t, c) => this.at(c, (p) => symlink(t, p)).catch((e) => erofs(e, c)),
      link: (existing, c) =>
        this.at(existing, (_p, fd1, n1) => this.at(c, (_q, fd2, n2) => this.ask(`L ${fd1} ${hex(n1)} ${fd2} ${hex(n2)}`))).then(
          () => {},
          (e) => erofs(e, c),
        ),
      lutimes: (c, t) => this.at(c, (p) => lutimes(p, t, t)),
      remove: (c) =>
        this.at(c, (_p, fd, n) => this.ask(`R ${fd} ${hex(n)}`)).then(
          () => {},
          (e) => (e.code === 'ENOENT' ? undefined : erofs(e, c)),
        ),
      readOnly: () => false, // a read-only mount answers EROFS, turned into the same refusal
    };
  }

  close(): void {
    this.p.stdin.end();
    this.p.kill('SIGKILL');
  }
}
