// Spare utility VMs, as Kata's VM cache keeps them: a clone of the template the last VM was restored from, launched,
// restored and its agent answering, with nothing of any container in it. A create takes it instead of launching and
// restoring one, which takes QEMU's own start (≈150 ms here, most of it the dynamic linker and page faults) and the
// guest's first wake-up under TCG (≈100 ms) off the path of a `run`. What a container brings is given to the spare
// when it is taken (the backend's claim):
// - its disks: each slot is a raw node over a placeholder the guest never read; the claim adds the files and swaps
//   them in with one blockdev-reopen;
// - its network: the spare's tap is made in a network namespace of the spare's own (it dies with QEMU); the claim
//   moves the tap into the container's namespace, where it is joined to the endpoint as any VM's is;
// - its log and exit ports: files in <state>/spares/<hex>/, renamed into the container's state dir (same file system;
//   QEMU writes on through its descriptors);
// - its cgroups: QEMU is moved into them. What it allocated while waiting stays charged where the daemon runs.
// The run dir (sockets, pid file, console, qemu.name) is renamed to the container's; the QMP and agent connections
// made here go with it. A spare is the daemon's alone: killed when the daemon stops, and by the next daemon's init
// when it was killed.

import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { oneLine } from '../../common/errors.js';
import { killQemuIn, launch, paths, qemuAlive, type VmAssets, type VmSize } from './qemu.js';
import { restoreInto, templateState } from './template.js';
import { Qmp } from './qmp.js';
import { AgentChannel } from './channel.js';

export interface Spare {
  name: string;
  /** Its run dir (sockets, pid file, console). */
  dir: string;
  /** Its log and exit port files. */
  log: string;
  exit: string;
  pid: number;
  /** Its QMP and its agent's channel, open since the template was loaded into it. */
  qmp?: Qmp;
  chan?: AgentChannel;
  key: string;
  /** The template's state file as it was at the launch (a template made again since is another). */
  stamp: string;
}

interface Want {
  template: string;
  size: VmSize;
  assets: VmAssets;
  key: string;
}

const SPARE_DIR = /^s-[0-9a-f]{12}$/;
/** A restore answers in well under a second here; one that does not is given up (the next create launches its own). */
const RESTORE_TIMEOUT_MS = 30_000;
/** How long a create waits for the spare being made before it launches its own VM (a whole start is ≈300 ms). */
const WAIT_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stampOf = (template: string): string => {
  const st = statSync(templateState(template), { throwIfNoEntry: false });
  return st ? `${st.ino}:${st.mtimeMs}:${st.size}` : '';
};

export class Spares {
  private readonly ready: Spare[] = [];
  private want?: Want;
  private filling?: Promise<void>;
  /** The spare being made now, and when it is in `ready` (or failed). */
  private launching?: { key: string; settled: Promise<void> };
  private closed = false;

  /** `count`: spares kept for the template in use (0: none). */
  constructor(private readonly o: { runDir: string; stateDir: string; cgroupParent: string; count: number; log: Logger }) {}

  /** The spares an earlier daemon left (it was killed): their QEMUs killed, their directories removed. */
  async init(): Promise<void> {
    for (const e of await readdir(this.o.runDir).catch(() => [] as string[])) {
      if (!SPARE_DIR.test(e)) continue;
      const dir = join(this.o.runDir, e);
      await killQemuIn(dir);
      await rm(dir, { recursive: true, force: true });
    }
    await rm(this.o.stateDir, { recursive: true, force: true });
  }

  /**
   * A spare made for `template` at `size`, if one waits. The next is made by refill(), which the create calls when
   * its VM is up: made meanwhile, its start (QEMU's and the restored guest's CPU) would slow the guest the create
   * waits on.
   */
  async take(template: string, size: VmSize, assets: VmAssets): Promise<Spare | undefined> {
    if (!this.o.count || this.closed) return undefined;
    const key = `${template}\n${size.memoryMiB}/${size.cpus}`;
    this.want = { template, size, assets, key };
    const s = await this.pick(key, template);
    if (s || this.launching?.key !== key) return s;
    // One is being made: the rest of its start is less than a whole start (but not waited for past a whole start).
    await Promise.race([this.launching.settled, sleep(WAIT_MS)]);
    return this.pick(key, template);
  }

  private async pick(key: string, template: string): Promise<Spare | undefined> {
    for (let i = this.ready.findIndex((x) => x.key === key); i >= 0; i = this.ready.findIndex((x) => x.key === key)) {
      const c = this.ready.splice(i, 1)[0];
      if (c.stamp === stampOf(template) && c.chan && !c.chan.isClosed && (await qemuAlive(c.pid, c.name))) return c;
      void this.discard(c).catch(() => {});
    }
    return undefined;
  }

  /** Kill every spare (the daemon stops); none is launched after. */
  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    await Promise.all(this.ready.splice(0).map((s) => this.discard(s)));
  }

  get count(): number {
    return this.ready.length;
  }

  /** Make spares until `count` wait for the template last asked for. */
  refill(): void {
    if (this.filling || this.closed) return;
    this.filling = (async () => {
      while (!this.closed && this.want) {
        const w = this.want;
        // Spares of another template or size wait for nothing now.
        for (const s of this.ready.filter((x) => x.key !== w.key)) {
          this.ready.splice(this.ready.indexOf(s), 1);
          await this.discard(s);
        }
        if (this.ready.length >= this.o.count) return;
        let settle = () => {};
        this.launching = { key: w.key, settled: new Promise<void>((r) => (settle = r)) };
        try {
          const s = await this.launch(w);
          if (!s) return;
          if (this.closed) await this.discard(s);
          else this.ready.push(s);
        } finally {
          this.launching = undefined;
          settle();
        }
      }
    })().finally(() => (this.filling = undefined));
  }

  private async launch(w: Want): Promise<Spare | undefined> {
    const hex = randomBytes(6).toString('hex');
    const name = `${this.o.cgroupParent}-spare-${hex}`;
    const dir = join(this.o.runDir, `s-${hex}`);
    const files = join(this.o.stateDir, hex);
    const s: Spare = { name, dir, log: join(files, 'ctr.log'), exit: join(files, 'exit'), pid: 0, key: w.key, stamp: stampOf(w.template) };
    try {
      await Promise.all([mkdir(dir, { recursive: true, mode: 0o700 }), mkdir(files, { recursive: true, mode: 0o700 })]);
      s.pid = await launch(w.assets, {
        name, dir, logFile: s.log, exitFile: s.exit, size: w.size, spare: true, tap: 'tap0',
        ram: { path: join(w.template, 'ram'), share: false }, incoming: templateState(w.template),
      });
      // Restored now, and its agent answering: a create that takes it starts at the agent's first request, into a
      // guest whose wake-up code TCG has translated already. The channel stays open, so the agent waits in poll().
      const qmp = (s.qmp = await Qmp.open(paths(dir).qmp));
      await restoreInto(qmp);
      // QEMU exits when a load fails: no waiting for an agent then.
      const stop = new AbortController();
      try {
        s.chan = await Promise.race([AgentChannel.open(paths(dir).ctl, RESTORE_TIMEOUT_MS, stop.signal), qmp.gone().then(() => Promise.reject(new Error('QEMU exited while restoring')))]);
      } finally {
        stop.abort();
      }
      return s;
    } catch (e) {
      // Not again for this template: the next create launches its own QEMU, which says what is wrong.
      this.want = undefined;
      this.o.log.warn(`vm: no spare VM (${oneLine(e)})`);
      await this.discard(s);
      return undefined;
    }
  }

  /** A spare that will not be used: its QEMU killed, its files removed. */
  private async discard(s: Spare): Promise<void> {
    s.chan?.close();
    s.qmp?.close();
    await killQemuIn(s.dir);
    await Promise.all([rm(s.dir, { recursive: true, force: true }), rm(dirname(s.log), { recursive: true, force: true })]);
  }

  /**
   * A spare a claim could not finish: discarded wherever the claim left it. Once its run dir was renamed to the
   * container's (`claimedDir`), that dir stays for the VM launched instead, less the spare's qemu.name.
   */
  async drop(s: Spare, claimedDir: string): Promise<void> {
    if (existsSync(s.dir)) return this.discard(s);
    s.chan?.close();
    s.qmp?.close();
    await killQemuIn(claimedDir, s.name);
    await Promise.all([rm(paths(claimedDir).name, { force: true }), rm(dirname(s.log), { recursive: true, force: true })]);
  }
}

/**
 * A claimed spare's disk slots given the container's files (the scratch writable, the layers read-only): each
 * file added as a node, then every slot's raw node reopened over its file in one command. The guest has read no
 * slot yet (the agent indexed their serials before the template was saved; it mounts them at the root request).
 * Slots left empty keep their placeholders, as a launched clone's do.
 */
export async function swapSlots(qmp: Qmp, slots: { file: string; readOnly: boolean }[]): Promise<void> {
  await Promise.all(slots.map((d, i) => qmp.execute('blockdev-add', { driver: 'file', 'node-name': `f${i}`, filename: d.file, 'read-only': d.readOnly })));
  await qmp.execute('blockdev-reopen', { options: slots.map((d, i) => ({ driver: 'raw', 'node-name': `s${i}`, file: `f${i}`, 'read-only': d.readOnly })) });
}
