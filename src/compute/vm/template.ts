// Templates: a utility VM booted once to its agent, paused and saved (QMP `migrate` with the `x-ignore-shared`
// capability, guest RAM in a shared memory-backend file that the stream then leaves out). A clone maps that RAM file
// privately (copy on write), loads the small device stream (`-incoming defer`, `migrate-incoming` from the open state
// file) and runs on.
// One template per kernel + initramfs + QEMU + accelerator + VM size (a container's own guest kernel has its own),
// made on first use under a temporary name and renamed into place when whole; one whose inputs changed is removed.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../common/atomic.js';
import { oneLine } from '../../common/errors.js';
import { KeyedLock } from '../../common/lock.js';
import { AgentChannel } from './channel.js';
import { Qmp } from './qmp.js';
import { faultPoint } from '../../common/fault.js';
import type { Logger } from '../../common/log.js';
import type { VmTemplateInfo as TemplateInfo } from '../types.js';
import { consoleTail, INCOMING_FD, KERNEL_CMDLINE, launch, paths, qemuArgs, qemuAlive, type VmAssets, type VmSize } from './qemu.js';
import type { GuestBoot } from './kernels.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bumped when the machine's device set changes: older templates no longer load. */
const MACHINE_VERSION = 6;

export class Templates {
  private readonly lock = new KeyedLock();

  constructor(
    private readonly dir: string,
    private readonly runDir: string,
    private readonly assets: VmAssets,
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  /** The default guest kernel (build/vm). */
  private get defaultBoot(): GuestBoot {
    return { kernel: this.assets.kernel, initramfs: this.assets.initramfs };
  }

  /** Drop half-made templates and those whose inputs changed (or whose kernel is gone) since they were made. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const e of await readdir(this.dir)) {
      const meta = JSON.parse(await readFile(join(this.dir, e, 'template.json'), 'utf8').catch(() => '{}')) as { inputs?: string; boot?: GuestBoot };
      const inputs = await this.currentInputs(meta.boot ?? this.defaultBoot).catch(() => undefined);
      if (e.startsWith('.tmp-') || !inputs || meta.inputs !== inputs) await rm(join(this.dir, e), { recursive: true, force: true });
    }
  }

  /** What a template depends on besides its size: kernel, initramfs, QEMU binary, accelerator, machine. */
  private async currentInputs(boot: GuestBoot): Promise<string> {
    const id = async (f: string) => {
      const s = await stat(f);
      return `${f}:${s.size}:${s.mtimeMs}`;
    };
    return createHash('sha256')
      .update([await id(boot.kernel), await id(boot.initramfs), await id(this.assets.qemu), this.assets.accel, KERNEL_CMDLINE, MACHINE_VERSION].join('\n'))
      .digest('hex');
  }

  private async keyOf(size: VmSize, boot: GuestBoot): Promise<string> {
    return createHash('sha256').update(`${await this.currentInputs(boot)}\n${size.memoryMiB}M/${size.cpus}`).digest('hex').slice(0, 16);
  }

  /** The template directory for `size` booting `boot` (default: the default kernel), made now if missing (its inputs
   *  are looked at on every call: a rebuilt initramfs or a new kernel makes a new template at once). */
  async get(size: VmSize, boot: GuestBoot = this.defaultBoot): Promise<string> {
    const key = await this.keyOf(size, boot);
    const final = join(this.dir, key);
    return this.lock.run(key, async () => {
      if (await stat(join(final, 'template.json')).then(() => true, () => false)) return final;
      const t0 = Date.now();
      await this.build(size, final, boot);
      this.log.info(`vm: template ${key} (${size.memoryMiB} MiB, ${size.cpus} vCPU${boot.package ? `, ${boot.package}` : ''}) made in ${Date.now() - t0} ms`);
      return final;
    });
  }

  /** The templates made (half-made ones are not listed). */
  async list(): Promise<TemplateInfo[]> {
    const out: TemplateInfo[] = [];
    for (const key of await readdir(this.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{16}$/.test(key)) continue;
      const meta = JSON.parse(await readFile(join(this.dir, key, 'template.json'), 'utf8').catch(() => 'null')) as { size?: VmSize; boot?: GuestBoot } | null;
      if (!meta?.size) continue;
      const [ram, st] = await Promise.all([stat(join(this.dir, key, 'ram')).catch(() => undefined), stat(join(this.dir, key, 'template.json'))]);
      // The RAM file is sparse: what it holds on disk is its blocks, not its length.
      out.push({ Key: key, MemoryMiB: meta.size.memoryMiB, Cpus: meta.size.cpus, DiskBytes: (ram?.blocks ?? 0) * 512, Created: st.mtime.toISOString(), ...(meta.boot?.package ? { Kernel: meta.boot.package } : {}) });
    }
    return out.sort((a, b) => a.MemoryMiB - b.MemoryMiB || a.Cpus - b.Cpus);
  }

  /** The template's key for `size` (made now if missing). */
  async make(size: VmSize, boot?: GuestBoot): Promise<string> {
    const dir = await this.get(size, boot);
    return dir.slice(this.dir.length + 1);
  }

  /** Remove a template by key; false if there is none. */
  async remove(key: string): Promise<boolean> {
    if (!/^[0-9a-f]{16}$/.test(key) || !(await stat(join(this.dir, key, 'template.json')).then(() => true, () => false))) return false;
    await this.discard(join(this.dir, key));
    return true;
  }

  /** A template a clone could not load is made again at its next use (clones running from its RAM file keep their
   *  mapping of it). */
  async discard(dir: string): Promise<void> {
    const key = dir.slice(this.dir.length + 1);
    if (!/^[0-9a-f]{16}$/.test(key) || join(this.dir, key) !== dir) return;
    await this.lock.run(key, () => rm(dir, { recursive: true, force: true }));
  }

  private async build(size: VmSize, final: string, boot: GuestBoot): Promise<void> {
    const assets = { ...this.assets, kernel: boot.kernel, initramfs: boot.initramfs };
    const rand = randomBytes(4).toString('hex');
    const tmp = join(this.dir, `.tmp-${rand}`);
    const run = join(this.runDir, `t-${rand}`);
    let pid: number | undefined;
    const name = `${this.name}-template-${rand}`;
    try {
      await mkdir(tmp, { mode: 0o700 });
      await mkdir(run, { mode: 0o700 });
      pid = await launch(assets, { name, dir: run, logFile: join(run, 'log'), exitFile: join(run, 'exit'), size, ram: { path: join(tmp, 'ram'), share: true } });
      const ch = await AgentChannel.open(paths(run).ctl, 60_000).catch(async (e) => {
        throw new Error(`${oneLine(e)}; console: ${await consoleTail(run)}`);
      });
      ch.close();
      const qmp = await Qmp.open(paths(run).qmp);
      // Saved running (no `stop` first: the migration stops it at the end), so a clone runs as soon as it has loaded
      // the stream, with no `cont` to wait for.
      await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
      await qmp.execute('migrate', { uri: `exec:cat > ${join(tmp, 'state')}` });
      await waitMigration(qmp, 60_000);
      faultPoint('vm.template.after-save');
      await qmp.execute('quit').catch(() => {});
      qmp.close();
      for (let i = 0; i < 200 && (await qemuAlive(pid, name)); i++) await sleep(10);
      // A template of the default kernel records no boot: init() judges it against build/vm as that is then.
      await writeJsonAtomic(join(tmp, 'template.json'), { inputs: await this.currentInputs(boot), size, ...(boot.package ? { boot } : {}), args: qemuArgs(this.assets, { name: 'x', dir: 'x', logFile: 'x', exitFile: 'x', size }).length });
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    } finally {
      if (await qemuAlive(pid, name)) process.kill(pid!, 'SIGKILL');
      await rm(run, { recursive: true, force: true });
    }
  }
}

/** Poll the migration until it completes; reject when it fails or takes too long. */
export async function waitMigration(qmp: Qmp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (st.status === 'completed') return;
    if (st.status === 'failed' || st.status === 'cancelled') throw new Error(`migration ${st.status}: ${st['error-desc'] ?? ''}`);
    if (Date.now() > deadline) throw new Error('migration did not finish in time');
    await sleep(5);
  }
}

/** A template's device stream, which launch() opens for a clone (its `incoming`) and restoreInto has it load. */
export function templateState(template: string): string {
  return join(template, 'state');
}

/**
 * Load a template into a clone started with `-incoming defer` and its stream on INCOMING_FD: both commands in one
 * write, no waiting for the load. QEMU reads the descriptor itself (`fd:`): an `exec:cat` URI cost a shell and a
 * `cat` started by QEMU for each restore. The template was saved running, so the clone runs as soon as the stream is
 * in; a load that fails makes QEMU exit (its monitor closes), which the caller waiting for the agent sees.
 */
export async function restoreInto(qmp: Qmp): Promise<void> {
  await Promise.all([
    qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] }),
    qmp.execute('migrate-incoming', { uri: `fd:${INCOMING_FD}` }),
  ]);
}
