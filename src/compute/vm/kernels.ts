// Guest kernels a container names (`silo run --vm-kernel`, the Docker label io.silo.vm.kernel): a Debian kernel
// package fetched with `apt-get download` (no other download), its bzImage unpacked to the uncompressed vmlinux QEMU
// boots through PVH (as scripts/build-vm.sh does for the default kernel), and an initramfs made for it: the same agent
// and busybox, that kernel's modules. Made once per package under <state>/vm/kernels/<package>/, in a `.tmp-` dir
// renamed into place when whole, so a crash leaves nothing that looks finished (init() sweeps the debris).

import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from '../../common/atomic.js';
import { invalid, oneLine, SiloError } from '../../common/errors.js';
import { run } from '../../common/exec.js';
import { KeyedLock } from '../../common/lock.js';
import { faultPoint } from '../../common/fault.js';
import type { Logger } from '../../common/log.js';
import { KERNEL_PACKAGE_RE } from '../spec/validate.js';
import type { VmKernelInfo } from '../types.js';

/** What a utility VM boots: the kernel and initramfs files, and the package they came from (none: the default). */
export interface GuestBoot {
  kernel: string;
  initramfs: string;
  package?: string;
}

/** Modules the agent loads when the kernel has them as modules rather than built in (build-vm.sh's list, and ext4 for
 *  the layer disks, built into Debian's kernels but not necessarily into every flavour). A kernel without virtiofs
 *  still runs containers; one with a bind mount then fails its start with the agent's mount error. */
const GUEST_MODULES: [string, boolean][] = [['virtio_pci', true], ['virtio_console', true], ['virtio_blk', true], ['virtio_net', true], ['overlay', true], ['ext4', true], ['virtiofs', false]];

/** Decompressors of a bzImage's payload, by its first bytes (the kernel's CONFIG_KERNEL_*). */
const PAYLOADS: [Buffer, string[]][] = [
  [Buffer.from([0x02, 0x21, 0x4c, 0x18]), ['lz4', '-dc']],
  [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-dc']],
  [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ['xz', '-dc', '--single-stream']],
  [Buffer.from([0x1f, 0x8b]), ['gzip', '-dc']],
  [Buffer.from('BZh'), ['bzip2', '-dc']],
];

const exists = (p: string) => stat(p).then(() => true, () => false);
const modName = (file: string) => file.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

export class GuestKernels {
  private readonly lock = new KeyedLock();
  private agentId?: Promise<string>;

  constructor(
    private readonly dir: string,
    /** The static guest agent (build/vm/silo-agent), PID 1 of every initramfs. */
    private readonly agent: string,
    private readonly log: Logger,
    private readonly busybox = '/bin/busybox',
  ) {}

  /** Drop what a daemon killed mid-build left: a package's `.tmp-` dir, an initramfs' temporary file and tree. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const e of await readdir(this.dir)) {
      if (e.startsWith('.tmp-')) await rm(join(this.dir, e), { recursive: true, force: true });
      else for (const f of await readdir(join(this.dir, e)).catch(() => [] as string[])) if (f.includes('.tmp-')) await rm(join(this.dir, e, f), { recursive: true, force: true });
    }
  }

  /** The boot files of `pkg`, fetched and made now if this daemon has not made them yet (one build per package at a
   *  time). An unknown package or one that holds no bootable kernel is refused in one line (400). */
  ensure(pkg: string): Promise<GuestBoot> {
    if (!KERNEL_PACKAGE_RE.test(pkg)) throw invalid(`invalid guest kernel package "${pkg}": name a Debian kernel package, e.g. linux-image-6.1.0-NN-cloud-amd64`);
    const final = join(this.dir, pkg);
    return this.lock.run(pkg, async () => {
      const agentId = await this.agentIdentity();
      const initramfs = join(final, `initramfs-${agentId}.cpio`);
      if (!(await exists(join(final, 'kernel.json')))) {
        const t0 = Date.now();
        await this.fetch(pkg, final);
        this.log.info(`vm: guest kernel ${pkg} fetched and unpacked in ${Date.now() - t0} ms`);
      }
      // The initramfs holds the agent: one made with an older agent is made again (the kernel and modules stay).
      if (!(await exists(initramfs))) await this.makeInitramfs(final, initramfs);
      return { kernel: join(final, 'vmlinux'), initramfs, package: pkg };
    });
  }

  /** The kernels made so far (`silo vm kernel ls`); Containers is the caller's to count. */
  async list(): Promise<Omit<VmKernelInfo, 'Containers'>[]> {
    const out: Omit<VmKernelInfo, 'Containers'>[] = [];
    for (const e of await readdir(this.dir).catch(() => [] as string[])) {
      if (e.startsWith('.tmp-')) continue;
      const meta = await readJson<{ package?: string; version?: string; release?: string }>(join(this.dir, e, 'kernel.json')).catch(() => undefined);
      if (meta?.package !== e) continue; // half-made (no kernel.json yet) or not ours
      const created = (await stat(join(this.dir, e, 'kernel.json'))).mtime.toISOString();
      out.push({ Package: e, Version: meta.version ?? '', Release: meta.release ?? '', DiskBytes: await diskBytes(join(this.dir, e)), Created: created });
    }
    return out.sort((a, b) => a.Package.localeCompare(b.Package));
  }

  /** Whether `pkg` was made (its kernel.json is written last). */
  has(pkg: string): Promise<boolean> {
    return KERNEL_PACKAGE_RE.test(pkg) ? exists(join(this.dir, pkg, 'kernel.json')) : Promise.resolve(false);
  }

  /** Remove a kernel's files (`silo vm kernel rm`); false if it was never made. A running VM does not need them (QEMU
   *  read them when it started); a container that names it fetches it again at its next start. Waits for a build of
   *  the same package under way. */
  remove(pkg: string): Promise<boolean> {
    if (!KERNEL_PACKAGE_RE.test(pkg)) return Promise.resolve(false);
    const final = join(this.dir, pkg);
    return this.lock.run(pkg, async () => {
      if (!(await exists(join(final, 'kernel.json')))) return false;
      // Renamed aside first, so a crash midway leaves a `.tmp-` dir init() sweeps, never a kernel missing half its files.
      const tmp = join(this.dir, `.tmp-${randomBytes(4).toString('hex')}`);
      await rename(final, tmp);
      await rm(tmp, { recursive: true, force: true });
      return true;
    });
  }

  /** The agent's content hash: it names the initramfs made with it. Read once per daemon. */
  private agentIdentity(): Promise<string> {
    this.agentId ??= readFile(this.agent).then(
      (b) => createHash('sha256').update(b).digest('hex').slice(0, 16),
      () => {
        this.agentId = undefined;
        throw new SiloError('FailedPrecondition', 'SILO_VM_NO_KERNEL', `vm isolation needs the guest agent ${this.agent}: run scripts/setup.sh`);
      },
    );
    return this.agentId;
  }

  /** Download, unpack the kernel and keep the modules the agent loads, in load order. */
  private async fetch(pkg: string, final: string): Promise<void> {
    const tmp = join(this.dir, `.tmp-${randomBytes(4).toString('hex')}`);
    const work = join(tmp, 'work');
    try {
      await mkdir(work, { recursive: true, mode: 0o700 });
      const dl = await run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', pkg], { cwd: work, allowFail: true, timeoutMs: 600_000 });
      if (dl.code !== 0) throw downloadError(pkg, dl.stderr);
      const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
      if (!deb) throw new SiloError('Internal', 'SILO_VM_KERNEL', `apt-get download ${pkg} left no package file`);
      const root = join(work, 'root');
      await run('dpkg-deb', ['-x', join(work, deb), root]);
      const image = (await readdir(join(root, 'boot')).catch(() => [] as string[])).find((f) => f.startsWith('vmlinuz-'));
      if (!image) throw await notAKernel(pkg, join(work, deb));
      const release = image.slice('vmlinuz-'.length);
      const config = await readFile(join(root, 'boot', `config-${release}`), 'utf8').catch(() => '');
      if (!/^CONFIG_PVH=y$/m.test(config)) throw invalid(`guest kernel ${pkg} cannot boot in a utility VM: it is not built with CONFIG_PVH (QEMU boots the kernel directly through its PVH entry)`);
      await unpackVmlinux(pkg, join(root, 'boot', image), join(tmp, 'vmlinux'), work);
      await mkdir(join(tmp, 'modules'));
      const order = await this.modules(pkg, root, release, join(tmp, 'modules'));
      await writeFile(join(tmp, 'modules', 'order'), order.map((m) => `${m}\n`).join(''));
      const version = (await run('dpkg-deb', ['-f', join(work, deb), 'Version'])).stdout.trim();
      await rm(work, { recursive: true, force: true });
      await writeJsonAtomic(join(tmp, 'kernel.json'), { package: pkg, version, release, modules: order });
      faultPoint('vm.kernel.before-rename');
      // Only a directory someone emptied of its kernel.json by hand could be in the way.
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** The guest modules that are modules in this kernel, each after what it needs, as modprobe orders them (depmod
   *  over the package's tree first: Debian makes modules.dep at install). Soft dependencies count: ext4 mounts
   *  metadata_csum disks only with crc32c, a module in the generic flavour. Decompressed into `out`: the agent loads
   *  them with finit_module as they are. */
  private async modules(pkg: string, root: string, release: string, out: string): Promise<string[]> {
    // Debian ships modules under /lib/modules, newer releases under /usr/lib/modules.
    let prefix: string | undefined;
    for (const p of [root, join(root, 'usr')]) if (!prefix && (await exists(join(p, 'lib/modules', release)))) prefix = p;
    if (!prefix) throw invalid(`guest kernel ${pkg} has no modules for ${release}`);
    await run('depmod', ['-b', prefix, release]);
    const files: string[] = [];
    for (const [m, required] of GUEST_MODULES) {
      const r = await run('modprobe', ['-d', prefix, '-S', release, '--show-depends', m], { allowFail: true });
      if (r.code !== 0) {
        if (required) throw invalid(`guest kernel ${pkg} has no ${m} (built in or as a module): the utility VM needs it`);
        continue;
      }
      for (const l of r.stdout.split('\n')) {
        const f = /^insmod (\S+)/.exec(l)?.[1];
        if (f && !files.includes(f)) files.push(f);
      }
    }
    const order: string[] = [];
    for (const file of files) {
      const ko = `${modName(file.split('/').pop()!)}.ko`;
      const tool = file.endsWith('.xz') ? 'xz' : file.endsWith('.zst') ? 'zstd' : file.endsWith('.gz') ? 'gzip' : undefined;
      if (tool) await run('sh', ['-c', '"$1" -dc "$2" > "$3"', 'sh', tool, file, join(out, ko)]);
      else await copyFile(file, join(out, ko));
      order.push(ko);
    }
    return order;
  }

  /** The agent as /init, busybox (the agent runs `ip` from it) and the modules in their order, as a newc cpio. */
  private async makeInitramfs(final: string, initramfs: string): Promise<void> {
    const tmp = `${initramfs}.tmp-${randomBytes(4).toString('hex')}`;
    const root = `${tmp}.d`;
    try {
      for (const d of ['bin', 'dev', 'proc', 'sys', 'run', 'mnt', 'etc', 'lib/modules']) await mkdir(join(root, d), { recursive: true });
      await copyFile(this.agent, join(root, 'init'));
      await copyFile(this.busybox, join(root, 'bin/busybox'));
      await Promise.all([chmod(join(root, 'init'), 0o755), chmod(join(root, 'bin/busybox'), 0o755)]);
      for (const f of await readdir(join(final, 'modules'))) await copyFile(join(final, 'modules', f), join(root, 'lib/modules', f));
      await run('sh', ['-c', 'cd "$1" && find . -print0 | sort -z | cpio --null -o -H newc --owner 0:0 --quiet > "$2"', 'sh', root, tmp]);
      await rename(tmp, initramfs);
      // Initramfs files of other agents: QEMU reads one only when it starts, so no running VM needs them.
      for (const f of await readdir(final)) if (/^initramfs-[0-9a-f]{16}\.cpio$/.test(f) && join(final, f) !== initramfs) await rm(join(final, f), { force: true });
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(tmp, { force: true });
    }
  }
}

/** The blocks a directory's files hold on disk. */
async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += ((await stat(join(e.parentPath, e.name)).catch(() => undefined))?.blocks ?? 0) * 512;
  }
  return total;
}

/** apt-get's `E:` line as the one-line answer: an unknown package is the caller's mistake (400), anything else not. */
function downloadError(pkg: string, stderr: string): SiloError {
  const e = stderr.split('\n').filter((l) => l.startsWith('E: ')).map((l) => l.slice(3).trim());
  if (e.some((l) => /Unable to locate package|has no installation candidate|Can't select candidate|No packages found/.test(l))) {
    return invalid(`no guest kernel package ${pkg} in this host's apt sources (apt-cache search linux-image lists them)`);
  }
  return new SiloError('Unavailable', 'SILO_VM_KERNEL', `apt-get download ${pkg} failed: ${oneLine(e.join('; ') || stderr.trim().split('\n').pop() || 'no reason given')}`);
}

/** A package with no /boot/vmlinuz-*: a metapackage says which package it stands for. */
async function notAKernel(pkg: string, deb: string): Promise<SiloError> {
  const depends = (await run('dpkg-deb', ['-f', deb, 'Depends'], { allowFail: true })).stdout;
  const target = /\b(linux-image-[a-z0-9][a-z0-9.+-]*)/.exec(depends)?.[1];
  return invalid(`package ${pkg} holds no kernel${target ? ` (it stands for ${target}: name that one)` : ''}`);
}

/** The bzImage's compressed payload (offset and length from its boot header, after the setup sectors) decompressed:
 *  the ELF vmlinux QEMU boots through its PVH note. The payload's decompressor is picked by its magic. */
export async function unpackVmlinux(pkg: string, bzImage: string, out: string, work: string): Promise<void> {
  const img = await readFile(bzImage);
  const bad = () => invalid(`guest kernel ${pkg}: ${bzImage.split('/').pop()} is not an x86 bzImage with a known compressed payload`);
  if (img.length < 0x250 || img.toString('latin1', 0x202, 0x206) !== 'HdrS') throw bad();
  const setup = ((img[0x1f1] || 4) + 1) * 512;
  const payload = img.subarray(setup + img.readUInt32LE(0x248), setup + img.readUInt32LE(0x248) + img.readUInt32LE(0x24c));
  const dec = PAYLOADS.find(([magic]) => payload.subarray(0, magic.length).equals(magic))?.[1];
  if (!dec) throw bad();
  const file = join(work, 'payload');
  await writeFile(file, payload);
  // The payload ends with the image's size, which lz4 and zstd report as trailing garbage: judged by the output.
  await run('sh', ['-c', 'f=$1 o=$2; shift 2; "$@" < "$f" > "$o"', 'sh', file, out, ...dec], { allowFail: true }).catch(() => {});
  const head = Buffer.alloc(20);
  const fh = await open(out, 'r').catch(() => undefined);
  const got = fh ? (await fh.read(head, 0, 20, 0).finally(() => fh.close())).bytesRead : 0;
  // An x86-64 ELF (e_machine 62).
  if (got < 20 || head.readUInt32BE(0) !== 0x7f454c46 || head.readUInt16LE(18) !== 62) throw bad();
  await rm(file, { force: true });
}
