// The `vm` isolation backend: each compute system runs in its own utility VM (QEMU, its own guest kernel), restored
// from a template when it can and cold-booted otherwise. The guest agent (agent/agent.c) runs the processes; this
// side turns the IsolationBackend calls into QMP commands (disks, NICs, pause) and agent requests.
//
// Per system: <state>/systems/<id>/ holds ctr.log (the agent's log port, written by QEMU itself, so the log goes on
// while no daemon runs) and exit (the agent's exit port). <run>/<id16>/ holds QEMU's sockets, pid file and console.

import { constants as osc } from 'node:os';
import { mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { badState, conflict, invalid, oneLine, SiloError } from '../../common/errors.js';
import type {
  Attachment, CopyTarget, ExecOptions, ExitStatus, GuestInterface, InitOptions, IsolationBackend, LogEntry, ProcessInfo, ProcessParams, Resources, RuntimeState, Statistics,
} from '../backend.js';
import type { RootDescription } from '../../storage/types.js';
import type { ComputeSystemDocument } from '../types.js';
import { removeFindings, type Finding } from '../../common/leaks.js';
import { resolveUser } from '../user.js';
import { buildEnv, checkCwd } from '../resolve.js';
import { readLogFile } from '../logs.js';
import { AgentChannel, decodeList, decodeStrings, encodeStrings, Op } from './channel.js';
import { Qmp } from './qmp.js';
import { BOOT_MAC, consoleTail, DISK_SLOTS, findAssets, HOTPLUG_SLOTS, hotAdd, killQemuIn, launch, MODERN_ONLY, MAX_DISKS, paths, qemuAlive, type VmAssets, type VmSize } from './qemu.js';
import { restoreInto, templateState, Templates } from './template.js';
import { GuestKernels } from './kernels.js';
import type { VmKernelInfo, VmTemplateInfo as TemplateInfo } from '../types.js';
import { LayerDisks } from './disks.js';
import { HostCgroup } from './hostcg.js';
import { attachTap, moveTap } from './tap.js';
import { checkVmDocument } from './refuse.js';
import { GuestTree } from './guestfs.js';
import { hostTree, TreeFiles, type Tree } from '../archive.js';
import { RootMounts } from '../rootfs-mount.js';
import { agentShareArgs, findVirtiofsd, sharesOf, startShares, stopShares } from './virtiofs.js';
import type { Logger } from '../../common/log.js';
import { readSmallText, writeJsonAtomic } from '../../common/atomic.js';
import { KeyedLock } from '../../common/lock.js';
import * as pod from './pod.js';
import { bindMounts, copyTemplateRam, hasPodShare, hotAddShare, podShare, preparePodShare, ramCopy, removePodShare, unbindMounts } from './podshare.js';
import { faultPoint } from '../../common/fault.js';
import { JitTrim } from './jit.js';
import { Spares, swapSlots, type Spare } from './spares.js';

const ID_RE = /^[0-9a-f]{16,64}$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;
const INIT = 1;

export interface VmBackendOptions {
  stateDir: string;
  runDir: string;
  cgroupParent: string;
  buildDir: string;
  /** Restore from templates (default); false = every VM cold-boots. */
  templates: boolean;
  /** Spares kept restored ahead for the template in use (spares.ts); 0: none. */
  spares: number;
  /** Guest RAM when no memory limit is set. */
  defaultMemoryMiB: number;
  bootTimeoutMs: number;
  /** Rotation of a container's log unless its create says: bytes (-1 none) and files kept (docker's max-size and
   *  max-file; the daemon's defaults, as for process containers). */
  logMaxSize: number;
  logMaxFiles: number;
  log: Logger;
}

/** When a system's log rotates (maxSize -1: never); `log.json` in its state, so a later daemon rotates it too. */
interface LogRotation { maxSize: number; maxFiles: number }

interface Live {
  qmp?: Qmp;
  chan?: AgentChannel;
  opening?: Promise<{ qmp: Qmp; chan: AgentChannel }>;
  execs: Map<string, number>;
  memoryLimit: number;
  rotation?: LogRotation;
  /** The rotation under way: one at a time, whether the agent asked (its log is full) or the size was seen. */
  rotating?: Promise<void>;
}

export class VmBackend extends TreeFiles implements IsolationBackend {
  private assetsP?: Promise<VmAssets>;
  private templates?: Templates;
  private readonly disks: LayerDisks;
  private readonly kernels: GuestKernels;
  private readonly live = new Map<string, Live>();
  private readonly jit: JitTrim;
  /** Systems that run in another system's VM (a pod's containers), as guest.json records them; null: its own VM. */
  private readonly guests = new Map<string, pod.Guest | null>();
  /** Per VM: what is plugged into it and taken out of it (a pod's containers' disks and ports). */
  private readonly plugs = new KeyedLock();
  /** Roots of stopped VM containers, mounted on the host only while a copy runs (under <run>/copies). */
  private readonly copyRoots: RootMounts;
  private readonly described = new Map<string, RootDescription>();
  private readonly spares: Spares;

  constructor(private readonly o: VmBackendOptions) {
    super();
    this.disks = new LayerDisks(join(o.stateDir, 'layers'));
    this.copyRoots = new RootMounts(join(o.runDir, 'copies'));
    this.kernels = new GuestKernels(join(o.stateDir, 'kernels'), join(o.buildDir, 'silo-agent'), o.log);
    this.jit = new JitTrim(o.log);
    this.spares = new Spares({ runDir: o.runDir, stateDir: join(o.stateDir, 'spares'), cgroupParent: o.cgroupParent, count: o.templates ? o.spares : 0, log: o.log });
  }

  checkDocument(doc: ComputeSystemDocument): void {
    checkVmDocument(doc);
  }

  /** A guest kernel the document names is fetched and built now, once per package, so a bad one fails the create. */
  async prepareDocument(doc: ComputeSystemDocument): Promise<void> {
    const pkg = doc.VirtualMachine?.KernelPackage;
    if (!pkg) return;
    await this.assets();
    await this.kernels.ensure(pkg);
  }

  async init(): Promise<void> {
    for (const d of [this.o.stateDir, join(this.o.stateDir, 'systems'), this.o.runDir]) await mkdir(d, { recursive: true, mode: 0o700 });
    await this.disks.init();
    await this.copyRoots.init();
    await this.disks.prune();
    await this.kernels.init();
    await this.spares.init();
    // Half-made templates' QEMUs and run dirs (a daemon killed while making one).
    for (const e of await readdir(this.o.runDir)) {
      if (!e.startsWith('t-')) continue;
      await killQemuIn(join(this.o.runDir, e), `${this.o.cgroupParent}-template-${e.slice(2)}`);
      await rm(join(this.o.runDir, e), { recursive: true, force: true });
    }
    const a = await this.assets().catch(() => undefined);
    if (a) {
      this.o.log.info(`vm: ${a.accel === 'kvm' ? 'KVM' : `TCG (code cache ${a.tcgCacheMiB} MiB, trimmed ${a.tcgTrim ? 'on' : 'off'})`} (${a.accelReason}); templates ${this.o.templates ? 'on' : 'off'}`);
      if (this.o.templates) await this.tpl(a).init();
    }
  }

  /** The daemon stops: its spare VMs go (the containers' VMs run on). */
  async close(): Promise<void> {
    await this.spares.close();
  }

  /** Spares waiting now (GET /v1/info). */
  get spareCount(): number {
    return this.spares.count;
  }

  private assets(): Promise<VmAssets> {
    this.assetsP ??= findAssets(this.o.buildDir);
    this.assetsP.catch(() => (this.assetsP = undefined));
    return this.assetsP;
  }

  /** Under TCG, the dead part of this VM's code cache is given back now and then while it runs (jit.ts). */
  private watchJit(id: string): void {
    void this.assets().then((a) => {
      if (a.accel !== 'tcg' || !a.tcgTrim) return;
      this.jit.watch(id, async () => {
        const live = this.live.get(id);
        const qmp = live?.qmp;
        const pid = await this.pid(id);
        const fill = (kib: number) => (live?.chan && !live.chan.isClosed ? live.chan.request(Op.JITFILL, 0, encodeStrings([['kib', kib]])) : Promise.resolve());
        return qmp && pid && (await qemuAlive(pid, this.name(id))) ? { qmp, pid, fill } : undefined;
      });
    }, () => {});
  }

  private tpl(a: VmAssets): Templates {
    this.templates ??= new Templates(join(this.o.stateDir, 'templates'), this.o.runDir, a, this.o.cgroupParent, this.o.log);
    return this.templates;
  }

  // `silo vm template`: the templates this backend makes and uses (owned here: no other service touches them).

  /** A template for the VM a container with these limits gets (`--memory`, `--cpus` as `run` takes them). */
  async makeTemplate(r: Resources, kernelPackage?: string): Promise<TemplateInfo> {
    const t = await this.templatesOrRefuse();
    const key = await t.make(this.sizeOf(r), kernelPackage !== undefined ? await this.kernels.ensure(kernelPackage) : undefined);
    return (await t.list()).find((x) => x.Key === key)!;
  }

  async listTemplates(): Promise<TemplateInfo[]> {
    return this.o.templates ? (await this.templatesOrRefuse()).list() : [];
  }

  async removeTemplate(key: string): Promise<void> {
    if (!(await (await this.templatesOrRefuse()).remove(key))) throw new SiloError('NotFound', 'SILO_NOT_FOUND', `no such VM template: ${key}`);
  }

  // `silo vm kernel`: the guest kernels containers named (owned here, as the templates made from them).

  async listKernels(): Promise<Omit<VmKernelInfo, 'Containers'>[]> {
    return this.kernels.list();
  }

  /** 404 unless `pkg` was made. */
  async checkKernel(pkg: string): Promise<void> {
    if (!(await this.kernels.has(pkg))) throw new SiloError('NotFound', 'SILO_NOT_FOUND', `no such guest kernel: ${pkg}`);
  }

  /** A kernel and the templates made from it; the caller has judged whether containers still name it. */
  async removeKernel(pkg: string): Promise<void> {
    await this.checkKernel(pkg);
    if (this.o.templates) {
      const t = await this.templatesOrRefuse();
      for (const x of await t.list()) if (x.Kernel === pkg) await t.remove(x.Key);
    }
    await this.kernels.remove(pkg);
  }

  private async templatesOrRefuse(): Promise<Templates> {
    if (!this.o.templates) throw new SiloError('FailedPrecondition', 'SILO_VM_TEMPLATES_OFF', 'VM templates are off in this daemon (--vm-templates off)');
    return this.tpl(await this.assets());
  }

  /** The name a VM launched for `id` gets; `name`: the one its QEMU has (a claimed spare keeps its own). */
  private launchName = (id: string) => `${this.o.cgroupParent}-${id.slice(0, 12)}`;
  private name = (id: string) => readSmallText(paths(this.runOf(id)).name).trim() || this.launchName(id);
  private runOf = (id: string) => join(this.o.runDir, id.slice(0, 16));
  private stateOf = (id: string) => join(this.o.stateDir, 'systems', id);
  private logFile = (id: string) => join(this.stateOf(id), 'ctr.log');
  private exitFile = (id: string) => join(this.stateOf(id), 'exit');
  private rotationFile = (id: string) => join(this.stateOf(id), 'log.json');

  private rotationOf(opts: InitOptions): LogRotation {
    return { maxSize: opts.log?.MaxSizeInBytes ?? this.o.logMaxSize, maxFiles: opts.log?.MaxFiles ?? this.o.logMaxFiles };
  }

  /** The agent's hard cap of the log file (its max-size) and what the file already holds (a restarted container's). */
  private async logCap(id: string, opts: InitOptions): Promise<[string, number][]> {
    const { maxSize } = this.rotationOf(opts);
    if (maxSize <= 0) return [];
    return [['logcap', maxSize], ['logged', await stat(this.logFile(id)).then((x) => x.size, () => 0)]];
  }

  /**
   * Rotate the log: ctr.log → ctr.log.1 … (the oldest dropped) and QEMU opens a new ctr.log; with one file kept it is
   * emptied in place (QEMU appends, so its next write lands at the start). The agent holds the init's output once the
   * file is at max-size and asks (LOGFULL), so no file passes it, even while no daemon runs; the size is also looked
   * at while the exit is awaited (every ≤ 0.5 s), for a VM whose agent predates the cap. The agent hears of every
   * rotation (LOGROTATED) and counts the new file from zero.
   */
  private rotateIfFull(id: string, asked = false): Promise<void> {
    const live = this.live.get(id);
    if (!live) return Promise.resolve();
    const next = (live.rotating ?? Promise.resolve()).then(() => this.rotateNow(id, live, asked));
    live.rotating = next.catch(() => {});
    return next;
  }

  /** `asked`: the agent holds the init's output at the log's cap (its files stay within max-size, so no size check). */
  private async rotateNow(id: string, live: Live, asked: boolean): Promise<void> {
    // No log.json: a container in a pod's VM (its log is its caller's to rotate).
    live.rotation ??= (JSON.parse(await readFile(this.rotationFile(id), 'utf8').catch(() => 'null')) as LogRotation | null) ?? { maxSize: -1, maxFiles: 1 };
    const { maxSize, maxFiles } = live.rotation!;
    if (maxSize <= 0) return;
    // A VM an earlier daemon started: its agent may be holding output at the cap, and says so when a host connects.
    if (!live.chan || live.chan.isClosed) await this.conn(id).catch(() => {});
    const file = this.logFile(id);
    if (!asked && (await stat(file).then((s) => s.size, () => 0)) < maxSize) return;
    if (maxFiles <= 1) await truncate(file, 0);
    else {
      await rm(`${file}.${maxFiles - 1}`, { force: true });
      for (let i = maxFiles - 2; i >= 1; i--) await rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => {});
      await rename(file, `${file}.1`).catch(() => {}); // QEMU makes it again at the reopen
      await this.reopenLog(id);
    }
    live.chan?.send(Op.LOGROTATED, 0);
  }

  /** The agent's channel of `id`'s own VM, set up: a full log (LOGFULL from container 0) is rotated at once. */
  private watch(id: string, chan: AgentChannel): AgentChannel {
    chan.onLogFull((ctr) => {
      if (ctr !== 0) return;
      this.rotateIfFull(id, true).catch((e) => this.o.log.warn(`vm: ${id.slice(0, 12)}: rotating the log failed (${oneLine(e)})`));
    });
    return chan;
  }
  /** vm-<id>: beside the process backend's <id> cgroups under the same parent, and never taken for one of them. */
  private cgroup = (id: string) => new HostCgroup(`${this.o.cgroupParent}/vm-${id}`);
  private cgroupFile = (id: string) => join(this.stateOf(id), 'cgroup');

  /** The host cgroup of a VM: under the daemon's parent, or the one its create asked for (a kubelet's pod cgroup). */
  private async cgroupOf(id: string): Promise<HostCgroup> {
    const rel = (await readFile(this.cgroupFile(id), 'utf8').catch(() => '')).trim();
    return rel ? new HostCgroup(rel) : this.cgroup(id);
  }

  private check(id: string): void {
    if (!ID_RE.test(id)) throw invalid(`invalid container id "${id}"`);
  }

  private guestFile = (id: string) => join(this.stateOf(id), 'guest.json');

  /** How `id` runs in a pod's VM, or undefined when it has a VM of its own. */
  private async guest(id: string): Promise<pod.Guest | undefined> {
    if (!this.guests.has(id)) {
      const g = JSON.parse(await readFile(this.guestFile(id), 'utf8').catch(() => 'null')) as pod.Guest | null;
      this.guests.set(id, g);
      return g ?? undefined;
    }
    return this.guests.get(id) ?? undefined;
  }

  /** The VM `id` runs in, its agent container and init process. */
  private async where(id: string): Promise<{ vm: string; ctr: number; init: number; g?: pod.Guest }> {
    const g = await this.guest(id);
    return g ? { vm: g.host, ctr: g.ctr, init: g.init, g } : { vm: id, ctr: 0, init: INIT };
  }

  private async pid(id: string): Promise<number | undefined> {
    const n = Number((await readFile(paths(this.runOf(id)).pid, 'utf8').catch(() => '')).trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  }

  /** Whether the VM `id` runs in is up. */
  private async alive(id: string): Promise<boolean> {
    const vm = (await this.guest(id))?.host ?? id;
    return qemuAlive(await this.pid(vm), this.name(vm));
  }

  private sizeOf(r: Resources): VmSize {
    const mem = r.memoryBytes ? Math.max(this.o.defaultMemoryMiB, Math.ceil((r.memoryBytes / MiB + 64) / 32) * 32) : this.o.defaultMemoryMiB;
    return { memoryMiB: mem, cpus: r.cpus ? Math.max(1, Math.ceil(r.cpus)) : 1 };
  }

  async create(opts: InitOptions): Promise<{ pid: number }> {
    this.check(opts.id);
    // Never a scratch mounted on the host and in a guest at once (a copy's mount a killed daemon left behind).
    await this.copyRoots.unmount(opts.id);
    if (opts.hostingSystem) return this.createGuest(opts, opts.hostingSystem);
    const defaults = await this.assets();
    // A guest kernel of its own: its files were made at create; made again here if they have gone since.
    const boot = opts.kernelPackage ? await this.kernels.ensure(opts.kernelPackage) : undefined;
    const a: VmAssets = boot ? { ...defaults, kernel: boot.kernel, initramfs: boot.initramfs } : defaults;
    const id = opts.id;
    const size = this.sizeOf(opts.resources);
    const run = this.runOf(id);
    if ((opts.interfaces?.length ?? 0) > 1) throw invalid('vm isolation takes one network');
    if (opts.root.layers.length + 1 > MAX_DISKS) throw invalid(`vm isolation takes images of at most ${MAX_DISKS - 1} layers`);
    // Bind mounts and volumes: one virtiofsd each, whose vhost-user device reads guest RAM itself, so the RAM must be
    // shared memory, which a template clone's private copy-on-write map of the template's RAM is not: a cold boot.
    // A pod's VM (hostedMounts) has one share for its containers' mounts and is restored onto a copy of the
    // template's RAM mapped shared, its share's device hot-added after the restore (podshare.ts).
    const podHost = opts.hostedMounts === true;
    if (podHost && opts.mounts.length) throw invalid("a pod's utility VM takes no bind mounts of its own (its containers' go through its share)");
    const shares = podHost ? [podShare(run)] : await sharesOf(run, opts.mounts);
    const virtiofsd = shares.length ? await findVirtiofsd() : '';
    // Shares are hot-added on the hot-plug bridge after a restore, beside the layers past the disk slots.
    const extraLayers = Math.max(0, opts.root.layers.length - (DISK_SLOTS - 1));
    const restorable = !shares.length || extraLayers + shares.length <= HOTPLUG_SLOTS;
    await this.delete(id, { force: true, keepLogs: true });
    const live: Live = { execs: new Map(), memoryLimit: opts.resources.memoryBytes ?? size.memoryMiB * MiB };
    this.live.set(id, live);
    try {
      const hostCg = opts.cgroupParent ? new HostCgroup(`${opts.cgroupParent.replace(/^\/+|\/+$/g, '')}/vm-${id}`) : this.cgroup(id);
      const t0 = Date.now();
      const marks: string[] = [];
      const mark = (what: string) => marks.push(`${what} ${Date.now() - t0}`);
      // What does not depend on the VM at once: directories, layer disks, the host cgroup, the template, the files.
      const [layerDisks, cgroupProcs, template, etc] = await Promise.all([
        Promise.all(opts.root.layers.map((l) => this.disks.ensure(l.chainId, l.path))),
        hostCg.create(size.memoryMiB, opts.resources.cpus),
        this.o.templates && restorable ? this.tpl(defaults).get(size, boot).catch((e: unknown) => (this.o.log.warn(`vm: no template (${oneLine(e)}); cold boot`), undefined)) : undefined,
        etcFilesFor(opts),
        mkdir(this.stateOf(id), { recursive: true, mode: 0o700 }).then(async () => {
          await Promise.all([mkdir(run, { recursive: true, mode: 0o700 }), writeJsonAtomic(this.rotationFile(id), this.rotationOf(opts), { durable: false })]);
          if (opts.cgroupParent) await writeFile(this.cgroupFile(id), hostCg.rel);
        }),
      ]);
      mark('prepared');
      if (shares.length && this.o.templates && !restorable) this.o.log.info(`vm: ${id.slice(0, 12)}: ${shares.length} bind mount(s) through virtiofs and ${extraLayers} hot-added layer(s) need more than the ${HOTPLUG_SLOTS} hot-plug slots: cold boot with shared memory`);
      if (podHost) await preparePodShare(run);
      if (shares.length) {
        // Restored from its template, a VM with shares runs on a copy of the template's RAM (made meanwhile).
        await Promise.all([startShares(virtiofsd, run, shares, cgroupProcs), template ? copyTemplateRam(template, ramCopy(this.launchName(id)), cgroupProcs).then(() => mark('ram copied')) : undefined]);
        faultPoint('vm.shares.after-start');
      }
      const nics = opts.interfaces ?? [];
      // The scratch and the bottom layers in the disk slots; layers past them are hot-added.
      const slotted = layerDisks.slice(0, DISK_SLOTS - 1);
      const extra = layerDisks.slice(DISK_SLOTS - 1);
      const slots = [{ file: opts.root.scratch.path, readOnly: false }, ...slotted.map((file) => ({ file, readOnly: true }))];
      const launchOpts = {
        name: this.launchName(id), dir: run, logFile: this.logFile(id), exitFile: this.exitFile(id), size, netnsPath: opts.netnsPath, cgroupProcs, tap: nics.length ? 'tap0' : undefined, slots,
        ...(shares.length ? { ram: { memfd: true as const }, shares } : {}),
      };
      // The tap's redirects are made meanwhile (a few tc runs in the namespace); waited for before the start.
      let tapped: Promise<void> | undefined;
      let spare: Spare | undefined;
      const tap = () => (tapped ??= nics.length ? (spare ? moveTap(spare.pid, opts.netnsPath!, 'tap0') : Promise.resolve()).then(() => attachTap(opts.netnsPath!, nics[0].ifname, 'tap0')) : Promise.resolve());
      let how = template ? (shares.length ? 'template restore onto shared RAM' : 'template restore') : shares.length ? 'cold boot with virtiofs' : 'cold boot';
      let chan: AgentChannel | undefined;
      let aheadCpu = 0;
      if (template) {
        try {
          // The template's device set: the shares' devices are hot-added once the clone runs.
          const ram = shares.length ? { path: ramCopy(this.launchName(id)), share: true } : { path: join(template, 'ram'), share: false };
          // The spare restored ahead (spares.ts), when nothing of this container needs QEMU's command line (its own
          // kernel, shares, a pod's share, a log an earlier run of it wrote, a namespace not under /run/netns).
          const spareFits = a === defaults && !shares.length && !podHost && (!nics.length || dirname(opts.netnsPath ?? '') === '/run/netns') && !existsSync(this.logFile(id));
          spare = spareFits ? await this.spares.take(template, size, a) : undefined;
          if (spare) {
            const s = spare;
            live.qmp = await this.claim(s, id, run, cgroupProcs, slots).catch(async (e: unknown) => {
              // The spare's fault, not the template's: killed, and a QEMU launched as if there were none.
              this.o.log.warn(`vm: ${id.slice(0, 12)}: the spare ${s.name} could not be taken (${oneLine(e)}); launching a VM`);
              await this.spares.drop(s, run);
              spare = undefined;
              return undefined;
            });
          }
          if (spare) {
            how = 'a spare restored ahead';
            chan = spare.chan;
            aheadCpu = await cpuMs(spare.pid);
            mark('claimed');
          } else {
            await launch(a, { ...launchOpts, ram, shares: undefined, incoming: templateState(template) });
            mark('launched');
          }
          // QEMU has the copy mapped (and passes virtiofsd its fd): its name goes now, its memory when QEMU exits, so
          // a VM that stopped holds none of it (a daemon killed before this line: the delete removes it by name).
          if (shares.length) await rm(ramCopy(this.launchName(id)), { force: true });
          tap().catch(() => {});
          live.qmp ??= await Qmp.open(paths(run).qmp);
          if (chan) await this.plugDisks(live.qmp, extra);
          else {
            await restoreInto(live.qmp);
            mark('restored');
            chan = await this.agent(run, live.qmp, how, extra);
          }
        } catch (e) {
          if (isBootTimeout(e)) throw e;
          // A spare taken was restored already: what failed after (hot-adding layers) says nothing against the template.
          if (spare) this.o.log.warn(`vm: ${id.slice(0, 12)}: the VM in the spare taken could not be finished (${oneLine(e)}); cold boot instead`);
          else {
            this.o.log.warn(`vm: ${id.slice(0, 12)}: template restore failed (${oneLine(e)}); cold boot instead, the template is made again at its next use`);
            await this.templates?.discard(template);
          }
          live.qmp?.close();
          live.qmp = undefined;
          await killQemuIn(run, this.name(id));
          // The tap went with that QEMU: the next one makes its own, joined again.
          await tapped?.catch(() => {});
          tapped = undefined;
          spare = undefined;
          chan?.close();
          chan = undefined;
          await rm(ramCopy(this.launchName(id)), { force: true });
          how = 'cold boot after a failed restore';
        }
      }
      if (!chan) {
        await launch(a, launchOpts);
        tap().catch(() => {});
        live.qmp = await Qmp.open(paths(run).qmp);
        chan = await this.agent(run, live.qmp, how, extra);
      }
      live.chan = this.watch(id, chan);
      mark('agent');
      if (shares.length && how.startsWith('template')) {
        for (const [i, s] of shares.entries()) await hotAddShare(live.qmp!, s, i);
        mark(`share${shares.length > 1 ? 's' : ''} added`);
      }
      // Every request at once: the agent serves them in order, so the root is mounted before the files and the user
      // lookups read it; one round trip instead of one each.
      const limits: [string, string | number][] = [];
      if (opts.resources.memoryBytes) limits.push(['memory', opts.resources.memoryBytes]);
      if (opts.resources.pidsLimit && opts.resources.pidsLimit > 0) limits.push(['pids', opts.resources.pidsLimit]);
      if (opts.resources.cpus) limits.push(['cpu', `${Math.round(opts.resources.cpus * 100000)} 100000`]);
      const serials = layerDisks.map((_, i) => (i < DISK_SLOTS - 1 ? `s${i + 1}` : `h${i}`));
      const setup = Promise.all([
        chan.request(Op.IDENTITY, 0, encodeStrings([['time', (BigInt(Date.now()) * 1000000n).toString()], ['hostname', opts.hostname], ['seed', randomBytes(32).toString('hex')]])),
        chan.request(Op.ROOT, 0, encodeStrings([...serials.map((s): [string, string] => ['layer', s]), ['scratch', 's0'], ...limits, ...(podHost ? [] : agentShareArgs(shares))])),
        ...etc.map((f) => chan.request(Op.FILE, 0, encodeStrings([['path', f.path], ['data', f.data]]))),
        ...nics.map((nic) => chan.request(Op.NET, 0, encodeStrings([['ifmac', BOOT_MAC], ['mac', nic.mac], ['addr', nic.address], ...(nic.gateway ? [['gw', nic.gateway] as [string, string]] : []), ...(nic.mtu ? [['mtu', nic.mtu] as [string, number]] : [])]))),
      ]);
      const users = this.userFiles(chan);
      users.catch(() => {});
      await setup;
      mark('root');
      await chan.request(Op.CREATE, INIT, await this.processPayload(chan, opts.process, opts.hostname, true, [...initExtras(opts), ...(await this.logCap(id, opts))], 0, users));
      await tap();
      const pid = (await this.pid(id))!;
      // QEMU's CPU time so far says how much of the wall time was the guest's work (TCG) rather than waiting.
      this.o.log.info(`vm: ${id.slice(0, 12)} up by ${how} (${size.memoryMiB} MiB, ${size.cpus} vCPU${boot ? `, ${boot.package}` : ''}): ${marks.join(', ')}, created ${Date.now() - t0} ms; QEMU CPU ${(await cpuMs(pid)) - aheadCpu} ms${aheadCpu ? ` (and ${aheadCpu} ms ahead)` : ''}`);
      this.watchJit(id);
      return { pid };
    } catch (e) {
      await this.delete(id, { force: true, keepLogs: true }).catch(() => {});
      throw e;
    } finally {
      this.spares.refill();
    }
  }

  /**
   * Make a spare `id`'s VM: its run dir, log and exit files renamed to `id`'s, QEMU moved into `id`'s cgroups, the
   * container's disks in its slots; returns its QMP. The run dir goes first and carries the spare's qemu.name: from
   * then on a delete of `id` (a failed create, a recovery after a crash) finds and kills that QEMU; before it, the
   * spares' own cleanup does.
   */
  private async claim(s: Spare, id: string, run: string, cgroupProcs: string[], slots: { file: string; readOnly: boolean }[]): Promise<Qmp> {
    await rename(s.dir, run);
    faultPoint('vm.spare.after-claim');
    await Promise.all([rename(s.log, this.logFile(id)), rename(s.exit, this.exitFile(id))]);
    await rm(dirname(s.log), { recursive: true, force: true });
    for (const f of cgroupProcs) await writeFile(f, String(s.pid));
    await swapSlots(s.qmp!, slots);
    return s.qmp!;
  }

  /** The agent of a VM just started: extra disks hot-added meanwhile; fails as soon as QEMU exits (a restore whose
   *  load failed) and after the boot time limit with the guest's last console lines. */
  private async agent(run: string, qmp: Qmp, how: string, extra: string[]): Promise<AgentChannel> {
    const stop = new AbortController();
    const opening = AgentChannel.open(paths(run).ctl, this.o.bootTimeoutMs, stop.signal);
    opening.catch(() => {});
    let exited = false;
    const gone = qmp.gone().then(() => (exited = true));
    try {
      await this.plugDisks(qmp, extra);
      return await Promise.race([opening, gone.then(() => Promise.reject(new Error('QEMU exited')))]);
    } catch (e) {
      stop.abort();
      if (exited) throw new Error(`QEMU exited (${how}); console: ${(await consoleTail(run)) || '(empty)'}`);
      if (e instanceof SiloError && e.code === 'SILO_VM_QMP') throw e;
      throw new SiloError('Unavailable', 'SILO_VM_BOOT', `utility VM did not come up in ${this.o.bootTimeoutMs / 1000} s (${how}); console: ${(await consoleTail(run)) || '(empty)'}`);
    }
  }

  /** Layers past the disk slots, read-only, hot-added on the hot-plug bridge; the guest finds each by its serial. */
  private async plugDisks(qmp: Qmp, extra: string[]): Promise<void> {
    for (const [k, file] of extra.entries()) {
      const i = DISK_SLOTS - 1 + k;
      await qmp.execute('blockdev-add', { driver: 'raw', 'node-name': `h${i}`, 'read-only': true, file: { driver: 'file', filename: file } });
      await hotAdd(qmp, { driver: 'virtio-blk-pci', ...MODERN_ONLY, id: `d-h${i}`, drive: `h${i}`, serial: `h${i}` });
    }
  }

  /** The container's own /etc/passwd and /etc/group (read by the agent from its root), for user lookups. */
  private async userFiles(chan: AgentChannel, ctr = 0): Promise<[string, string]> {
    const [passwd, group] = await Promise.all([chan.request(Op.READFILE, ctr, Buffer.from('/etc/passwd')), chan.request(Op.READFILE, ctr, Buffer.from('/etc/group'))]);
    return [passwd.toString('utf8'), group.toString('utf8')];
  }

  /** Args, env, cwd, user (resolved against the container's own passwd and group files) and tty of a process; `ctr`:
   *  the agent's container it runs in; `users`: those files if already asked for. */
  private async processPayload(chan: AgentChannel, p: ProcessParams, hostname: string, init: boolean, extra: [string, string | number][] = [], ctr = 0, users?: Promise<[string, string]>): Promise<Buffer> {
    if (!p.args.length) throw invalid('no command given');
    const [passwd, group] = await (users ?? this.userFiles(chan, ctr));
    const u = resolveUser(p.user, passwd, group);
    const env = buildEnv(p, hostname, u.home || '/');
    const kv: [string, string | number][] = [
      ...p.args.map((a): [string, string] => ['arg', a]),
      ...env.map((e): [string, string] => ['env', e]),
      ['cwd', checkCwd(p.cwd)], ['uid', u.uid], ['gid', u.gid], ...u.additionalGids.map((g): [string, number] => ['group', g]),
      ['tty', p.tty ? 1 : 0], ['stdin', p.stdin ? 1 : 0], ['init', init ? 1 : 0],
    ];
    if (p.consoleSize) kv.push(['rows', p.consoleSize.rows], ['cols', p.consoleSize.cols]);
    if (ctr) kv.push(['ctr', ctr]);
    return encodeStrings([...kv, ...extra]);
  }

  /** QMP and the agent channel of a running VM; reopened for a VM an earlier daemon started. */
  private async conn(sys: string): Promise<{ qmp: Qmp; chan: AgentChannel }> {
    this.check(sys);
    // A pod's container talks to its pod's VM.
    const id = (await this.guest(sys))?.host ?? sys;
    let live = this.live.get(id);
    if (!live) {
      live = { execs: new Map(), memoryLimit: 0 };
      this.live.set(id, live);
    }
    const l = live;
    if (l.qmp && l.chan && !l.chan.isClosed) return { qmp: l.qmp, chan: l.chan };
    l.opening ??= (async () => {
      if (!(await this.alive(id))) throw badState(`container ${id.slice(0, 12)}: its utility VM is not running`);
      const run = this.runOf(id);
      l.qmp ??= await Qmp.open(paths(run).qmp, 5000);
      this.watchJit(id);
      if (!l.chan || l.chan.isClosed) l.chan = this.watch(id, await AgentChannel.open(paths(run).ctl, 10_000));
      return { qmp: l.qmp, chan: l.chan };
    })().finally(() => (l.opening = undefined));
    return l.opening;
  }

  async attach(id: string): Promise<Attachment> {
    const { chan } = await this.conn(id);
    return new ProcAttachment(chan, (await this.where(id)).init);
  }

  async start(id: string): Promise<void> {
    const { chan } = await this.conn(id);
    await chan.request(Op.START, (await this.where(id)).init);
  }

  async kill(id: string, signal: string, all?: boolean): Promise<void> {
    const sig = signalNumber(signal);
    const w = await this.where(id);
    // A pod's container is killed in its VM (its guest cgroup); a VM of its own goes as a whole.
    if (sig === osc.signals.SIGKILL && all && !w.g) return this.hardStop(id);
    const { chan } = await this.conn(id);
    await chan.request(Op.SIGNAL, w.init, encodeStrings([['sig', sig], ['all', all ? 1 : 0]]));
  }

  /** Every process killed in the guest (the VM then powers off cleanly); QEMU killed if it does not. */
  private async hardStop(id: string): Promise<void> {
    const c = await this.conn(id).catch(() => undefined);
    if (c) await c.chan.request(Op.SIGNAL, INIT, encodeStrings([['sig', osc.signals.SIGKILL], ['all', 1]]), 2000).catch(() => {});
    for (let i = 0; i < 100 && (await this.alive(id)); i++) await sleep(20);
    await killQemuIn(this.runOf(id), this.name(id));
  }

  async pause(id: string): Promise<void> {
    if (await this.guest(id)) throw new SiloError('FailedPrecondition', 'SILO_VM_PAUSE', `container ${id.slice(0, 12)} shares its pod's utility VM: it cannot be paused alone`);
    const { qmp } = await this.conn(id);
    await this.jit.serial(id, () => qmp.execute('stop'));
  }

  async resume(id: string): Promise<void> {
    const { qmp } = await this.conn(id);
    await this.jit.serial(id, () => qmp.execute('cont'));
  }

  async update(id: string, r: Resources): Promise<void> {
    void r;
    throw new SiloError('FailedPrecondition', 'SILO_VM_UPDATE', `container ${id.slice(0, 12)} runs in a utility VM: its limits are the VM's size and cannot change while it runs (stop it first)`);
  }

  async state(id: string): Promise<RuntimeState> {
    this.check(id);
    const vm = (await this.where(id)).vm;
    const pid = await this.pid(vm);
    if (!(await qemuAlive(pid, this.name(vm))) || (await this.exitRecord(id))) return { status: (await stat(this.stateOf(id)).then(() => true, () => false)) ? 'stopped' : 'unknown' };
    const { qmp } = await this.conn(id);
    // Not while a trim of the code cache has the VM stopped for a moment: that is not a pause.
    const st = await this.jit.serial(vm, () => qmp.execute<{ status: string }>('query-status')).catch(() => ({ status: 'running' }));
    return { status: st.status === 'paused' ? 'paused' : 'running', pid };
  }

  /** The init's exit record, once the agent wrote it (the VM then unmounts the root and powers off by itself). */
  private async exitRecord(id: string): Promise<ExitStatus | undefined> {
    const file = this.exitFile(id);
    const [text, st] = await Promise.all([readFile(file, 'utf8').catch(() => ''), stat(file).catch(() => undefined)]);
    const m = /^(\d+) (\d)/.exec(text);
    return m && st ? { exitCode: Number(m[1]), finishedAt: st.mtime.toISOString(), oomKilled: m[2] === '1' } : undefined;
  }

  /** Wait (a little) for a VM whose init exited to finish powering off: its scratch is then cleanly unmounted. */
  private async settle(id: string, ms: number): Promise<void> {
    // A pod's container: the agent unmounts its root when its init exits, before the VM hears of anything else.
    if (!(await this.exitRecord(id)) || (await this.guest(id))) return;
    for (let t = 0; t < ms && (await this.alive(id)); t += 20) await sleep(20);
  }

  async exitStatus(id: string): Promise<ExitStatus | undefined> {
    this.check(id);
    const rec = await this.exitRecord(id);
    if (rec) return rec;
    if (await this.alive(id)) return undefined;
    // No record: the VM died without its init exiting (killed): as SIGKILL.
    return { exitCode: 137, finishedAt: new Date().toISOString() };
  }

  async waitExit(id: string): Promise<ExitStatus> {
    this.check(id);
    for (;;) {
      const st = await this.exitStatus(id);
      if (st) return st;
      await this.rotateIfFull(id).catch((e) => this.o.log.warn(`vm: ${id.slice(0, 12)}: rotating the log failed (${oneLine(e)})`));
      // QEMU's monitor closes when QEMU exits: wake on that, and look again now and then anyway.
      const { vm, init } = await this.where(id);
      const live = this.live.get(vm);
      // The agent's EXIT frame comes right after it wrote the exit record: wake on that too.
      await new Promise<void>((resolve) => {
        let off = () => {};
        const wake = () => (clearTimeout(t), off(), resolve());
        const t = setTimeout(wake, 500);
        const watch = (chan: AgentChannel) => {
          off = chan.listen(init, { onOut: () => {}, onExit: wake });
          chan.onClose(wake);
        };
        if (live?.chan && !live.chan.isClosed) watch(live.chan);
        else void this.conn(id).then((c) => watch(c.chan), () => {});
      });
    }
  }

  async statistics(id: string): Promise<Statistics> {
    const { chan } = await this.conn(id);
    const w = await this.where(id);
    const m = decodeStrings(await chan.request(Op.STATS, w.ctr));
    const n = (k: string) => Math.max(0, Number(m.get(k) ?? 0) || 0);
    const live = w.g ?? this.live.get(id);
    return {
      timestamp: new Date().toISOString(),
      cpu: { totalNs: n('cpu_usec') * 1000, userNs: n('user_usec') * 1000, kernelNs: n('system_usec') * 1000, throttledPeriods: n('throttled_periods'), throttledNs: n('throttled_usec') * 1000 },
      memory: { usageBytes: n('memory'), peakBytes: n('memory_peak'), limitBytes: live?.memoryLimit || n('mem_total'), failCount: n('memory_failcnt') },
      pids: { current: n('pids'), limit: 0 },
      io: { readBytes: n('io_read'), writeBytes: n('io_write') },
    };
  }

  async processList(id: string): Promise<ProcessInfo[]> {
    const { chan } = await this.conn(id);
    const out: ProcessInfo[] = [];
    for (const line of decodeList(await chan.request(Op.PS, (await this.where(id)).ctr))) {
      const [head, args] = line.split('\t');
      const f = head.split(' ');
      out.push({ pid: Number(f[0]), ppid: Number(f[1]), user: f[2], rssBytes: Number(f[3]), cpuNs: Number(f[4]) * 1e7, command: args?.trim() || f.slice(6).join(' ') });
    }
    return out;
  }

  async resize(id: string, execId: string | undefined, rows: number, cols: number): Promise<void> {
    const { chan } = await this.conn(id);
    const w = await this.where(id);
    const proc = execId ? this.live.get(w.vm)?.execs.get(execId) : w.init;
    if (proc === undefined) throw new SiloError('NotFound', 'SILO_NOT_FOUND', `no such exec: ${execId}`);
    await chan.request(Op.RESIZE, proc, encodeStrings([['rows', rows], ['cols', cols]]));
  }

  /** The log was rotated: QEMU's log port writes to a new file at the same path from now on. */
  async reopenLog(id: string): Promise<void> {
    const { qmp } = await this.conn(id);
    const g = await this.guest(id);
    if (g) return void (await pod.reopenLog(qmp, g.ctr, g.logFile));
    await qmp.execute('chardev-change', { id: 'log', backend: { type: 'file', data: { out: this.logFile(id), append: true } } });
  }

  async exec(id: string, opts: ExecOptions): Promise<{ pid: number; attachment: Attachment; exit: Promise<ExitStatus> }> {
    const { chan } = await this.conn(id);
    const w = await this.where(id);
    const live = this.live.get(w.vm)!;
    const proc = 2 + randomBytes(4).readUInt32LE(0) % 0x7ffffff0;
    const hostname = opts.process.env.find((e) => e.startsWith('HOSTNAME='))?.slice(9) ?? '';
    const payload = await this.processPayload(chan, opts.process, hostname, false, [], w.ctr);
    const attachment = new ProcAttachment(chan, proc);
    const exit = new Promise<ExitStatus>((resolve) => {
      const off = chan.listen(proc, { onOut: () => {}, onExit: (code, oom) => (off(), live.execs.delete(opts.execId), resolve({ exitCode: code, finishedAt: new Date().toISOString(), oomKilled: oom })) });
      chan.onClose(() => resolve({ exitCode: 137, finishedAt: new Date().toISOString() }));
    });
    try {
      const r = decodeStrings(await chan.request(Op.CREATE, proc, payload));
      live.execs.set(opts.execId, proc);
      await chan.request(Op.START, proc, encodeStrings([['arg0', opts.process.args[0]]]));
      return { pid: Number(r.get('pid') ?? 0), attachment, exit };
    } catch (e) {
      attachment.detach();
      live.execs.delete(opts.execId);
      throw e;
    }
  }

  async readLogs(id: string, opts: { follow: boolean; tail?: number; since?: string }, onEntry: (e: LogEntry) => unknown, signal: AbortSignal): Promise<void> {
    this.check(id);
    // A pod's container stops with its exit record; a VM of its own when it is gone (its last output written).
    const g = await this.guest(id);
    await readLogFile(g?.logFile ?? this.logFile(id), async () => !(await this.alive(id)) || (!!g && !!(await this.exitRecord(id))), opts, onEntry, signal);
  }

  async delete(id: string, opts: { force?: boolean; keepLogs?: boolean } = {}): Promise<void> {
    this.check(id);
    const g = await this.guest(id);
    if (g) return this.deleteGuest(id, g, opts);
    if (await this.alive(id)) {
      if (!opts.force && !(await this.exitRecord(id))) throw conflict(`container ${id.slice(0, 12)} is running in its utility VM`);
      // Its scratch stays (keepLogs: the system is not being removed): let a powering-off VM unmount it cleanly.
      if (opts.keepLogs) await this.settle(id, 3000);
      await killQemuIn(this.runOf(id), this.name(id));
    }
    // virtiofsd ends when its QEMU hangs up, but one whose QEMU never started (a failed create) waits for ever.
    await stopShares(this.runOf(id));
    // Before the run dir goes: a container's bound host directory must never be removed with it.
    await removePodShare(this.runOf(id), this.name(id));
    const live = this.live.get(id);
    this.jit.forget(id);
    live?.chan?.close();
    live?.qmp?.close();
    this.live.delete(id);
    await (await this.cgroupOf(id)).remove();
    await rm(this.cgroupFile(id), { force: true });
    await rm(this.runOf(id), { recursive: true, force: true });
    if (opts.keepLogs) await rm(this.exitFile(id), { force: true });
    else await rm(this.stateOf(id), { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    return (await readdir(join(this.o.stateDir, 'systems')).catch(() => [] as string[])).filter((n) => ID_RE.test(n));
  }

  /** Utility VMs' state of no known system (a QEMU process, its run directory and cgroup go with it). */
  async leaks(known: ReadonlySet<string>): Promise<Finding[]> {
    const out: Finding[] = (await this.list()).filter((id) => !known.has(id)).map((id) => ({ Kind: 'runtime' as const, Object: `utility VM ${id}`, Why: `container ${id.slice(0, 12)} does not exist`, Owner: 'vm' }));
    for (const ctl of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      for (const d of await readdir(`/sys/fs/cgroup/${ctl}/${this.o.cgroupParent}`).catch(() => [] as string[])) {
        const m = /^vm-([0-9a-f]{64})$/.exec(d);
        if (m && !known.has(m[1])) out.push({ Kind: 'cgroup', Object: `/sys/fs/cgroup/${ctl}/${this.o.cgroupParent}/${d}`, Why: `container ${m[1].slice(0, 12)} does not exist`, Owner: 'vm' });
      }
    }
    return out;
  }

  async fixLeaks(found: Finding[]): Promise<void> {
    const mine = found.filter((f) => f.Owner === 'vm');
    for (const f of mine) if (f.Kind === 'runtime') await this.delete(f.Object.split(' ').pop()!, { force: true });
    await removeFindings(mine.filter((f) => f.Kind === 'cgroup'));
  }

  // The root is assembled inside the utility VM at create (layer disks + the scratch image as a disk): nothing to
  // mount on the host.
  async mountRoot(id: string, root: RootDescription): Promise<void> {
    this.check(id);
    // Kept for a copy of the stopped container (the compute service describes the root just before one).
    this.described.set(id, root);
  }

  async unmountRoot(id: string): Promise<void> {
    this.check(id);
    this.described.delete(id);
    await this.copyRoots.unmount(id); // what a daemon killed during a copy of the stopped container left
    // A pod's container that stopped: the agent took its root down; its disks and ports leave the VM now.
    const g = await this.guest(id);
    if (g && (await this.alive(id))) await this.takeOut(id, g);
  }

  /** The pod VM is powering off (its own init exited) or gone: nothing is to be taken out of it. */
  private async hostGoing(g: pod.Guest): Promise<boolean> {
    return !(await this.alive(g.host)) || !!(await this.exitRecord(g.host));
  }

  /** One of a pod's containers, made inside the pod's running VM: its disks and ports hot-added, its root mounted by
   *  the agent beside the others, its init made there (pod.ts). */
  private async createGuest(opts: InitOptions, host: { id: string; sharePid: boolean }): Promise<{ pid: number }> {
    const id = opts.id;
    this.check(host.id);
    if (await this.guest(host.id)) throw invalid(`system ${host.id.slice(0, 12)} runs in another system's utility VM: it has none to share`);
    if ((opts.interfaces?.length ?? 0) > 0) throw invalid("a container in a pod's utility VM has its pod's network");
    const hostRun = this.runOf(host.id);
    if (opts.mounts.length && !(await hasPodShare(hostRun))) throw invalid(`bind mounts in the utility VM of ${host.id.slice(0, 12)} need its share, which it was made without (VirtualMachine.HostedMounts)`);
    if (opts.mounts.length > 64) throw invalid("a container in a pod's utility VM takes at most 64 mounts");
    await this.delete(id, { force: true, keepLogs: true });
    const { qmp, chan } = await this.conn(host.id);
    const rnd = () => randomBytes(4).readUInt32LE(0) % 0x7ffffff0;
    const g: pod.Guest = { host: host.id, ctr: 1 + rnd(), init: 2 + rnd(), logFile: opts.log?.Path ?? this.logFile(id), memoryLimit: opts.resources.memoryBytes ?? 0, sharePid: host.sharePid };
    // Recorded before anything is plugged: a daemon killed midway leaves what a delete can find and take out.
    await mkdir(this.stateOf(id), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(this.guestFile(id), g);
    this.guests.set(id, g);
    const t0 = Date.now();
    try {
      const layerFiles: string[] = [];
      for (const l of opts.root.layers) layerFiles.push(await this.disks.ensure(l.chainId, l.path));
      await rm(this.exitFile(id), { force: true });
      const layerSerials = await this.plugs.run(host.id, async () => {
        const own = await pod.ownLayers(qmp);
        await pod.plugPorts(qmp, g.ctr, g.logFile, this.exitFile(id));
        const added = layerFiles.filter((f) => !own.has(f));
        const serials = await pod.plugDisks(qmp, g.ctr, [{ file: opts.root.scratch.path, readOnly: false }, ...added.map((file) => ({ file, readOnly: true }))]);
        const scratch = serials.shift()!;
        return { scratch, layers: layerFiles.map((f) => own.get(f) ?? serials[added.indexOf(f)]) };
      });
      faultPoint('vm.guest.after-plug');
      // Its mounts' sources bound into the pod's share (guest.json names the container: a crash leaves what its
      // delete finds); the agent binds them from its mount of the share.
      const pbinds = opts.mounts.length ? await bindMounts(hostRun, g.ctr, opts.mounts) : [];
      faultPoint('vm.guest.after-bind');
      const r = opts.resources;
      const kv: [string, string | number][] = [...layerSerials.layers.map((s): [string, string] => ['layer', s]), ['scratch', layerSerials.scratch], ...pbinds];
      if (r.memoryBytes) kv.push(['memory', r.memoryBytes]);
      if (r.pidsLimit && r.pidsLimit > 0) kv.push(['pids', r.pidsLimit]);
      if (r.cpus) kv.push(['cpu', `${Math.round(r.cpus * 100000)} 100000`]);
      // cgroup v1 shares (2..262144) as the guest's cgroup v2 weight (1..10000), as runc maps them.
      if (r.cpuShares) kv.push(['weight', 1 + Math.round(((Math.min(262144, Math.max(2, r.cpuShares)) - 2) * 9999) / 262142)]);
      await chan.request(Op.ROOT, g.ctr, encodeStrings(kv));
      // A mount at the same path (a kubelet's /etc/hosts) is the container's file instead of the pod's.
      for (const f of await etcFilesFor(opts)) await chan.request(Op.FILE, g.ctr, encodeStrings([['path', f.path], ['data', f.data]]));
      const extra = initExtras(opts);
      if (host.sharePid) extra.push(['pidns', 0]);
      await chan.request(Op.CREATE, g.init, await this.processPayload(chan, opts.process, opts.hostname, true, extra, g.ctr));
      this.o.log.info(`vm: ${id.slice(0, 12)} made in the utility VM of ${host.id.slice(0, 12)} in ${Date.now() - t0} ms`);
      return { pid: (await this.pid(host.id)) ?? 0 };
    } catch (e) {
      await this.delete(id, { force: true, keepLogs: true }).catch(() => {});
      throw e;
    }
  }

  /** The agent kills a pod's container and takes its root down; its disks and ports are unplugged from the VM. */
  private async takeOut(id: string, g: pod.Guest): Promise<void> {
    if (await this.hostGoing(g)) return;
    const c = await this.conn(id).catch(() => undefined);
    if (!c) return;
    await this.plugs.run(g.host, async () => {
      try {
        await c.chan.request(Op.DESTROY, g.ctr, undefined, 10_000);
        await pod.unplug(c.qmp, g.ctr);
        await unbindMounts(this.runOf(g.host), g.ctr);
      } catch (e) {
        // The pod stopping meanwhile took the container with it.
        if (!(await this.hostGoing(g))) throw e;
      }
    });
  }

  private async deleteGuest(id: string, g: pod.Guest, opts: { force?: boolean; keepLogs?: boolean }): Promise<void> {
    if (await this.alive(id)) {
      if (!opts.force && !(await this.exitRecord(id))) throw conflict(`container ${id.slice(0, 12)} is running in its pod's utility VM`);
      await this.takeOut(id, g).catch((e) => this.o.log.warn(`vm: ${id.slice(0, 12)}: taking it out of its pod's VM: ${oneLine(e)}`));
    }
    // Its binds in the pod's share, whatever the VM's state (a create a crash interrupted made some).
    await unbindMounts(this.runOf(g.host), g.ctr);
    this.guests.delete(id);
    await rm(this.guestFile(id), { force: true });
    if (opts.keepLogs) await rm(this.exitFile(id), { force: true });
    else await rm(this.stateOf(id), { recursive: true, force: true });
  }

  /** A stopped VM's scratch is read by storage from its image; a running guest has it mounted read-write. */
  async scratchChanges(id: string): Promise<string | undefined> {
    this.check(id);
    await this.settle(id, 3000);
    if (await this.alive(id)) throw badState(`container ${id.slice(0, 12)} runs in a utility VM: stop it before a commit`);
    return undefined;
  }

  /**
   * The container's root as a copy sees it: inside its running guest, each call a request to the agent, which
   * resolves paths inside the root (guestfs.ts); a stopped one's on the host (below).
   */
  protected async withTree<T>(t: CopyTarget, fn: (tree: Tree) => Promise<T>): Promise<T> {
    if ((await this.alive(t.id)) && !(await this.exitRecord(t.id))) {
      const { chan } = await this.conn(t.id);
      const g = new GuestTree(chan, (await this.where(t.id)).ctr, !!t.rootOnly);
      try {
        return await fn(g.tree());
      } finally {
        await g.close();
      }
    }
    // Stopped: once its VM is gone, the root is mounted on the host for this copy alone, as a stopped process
    // container's is (the root lock the compute service holds keeps a start out until it is unmounted again).
    await this.settle(t.id, 3000);
    const root = this.described.get(t.id);
    if ((await this.alive(t.id)) || !root) {
      // A pod's stopped container: its disks may still be in the pod's running VM, so the host does not mount them.
      if (await this.guest(t.id)) throw badState(`container ${t.name} has stopped inside its pod's utility VM: copies of it need it running`);
      throw badState(`container ${t.name} has stopped but its utility VM has not gone yet: try the copy again`);
    }
    await this.copyRoots.mount(t.id, root);
    try {
      return await fn(hostTree({ rootfs: this.copyRoots.rootfs(t.id), mounts: t.rootOnly ? [] : t.mounts }));
    } finally {
      await this.copyRoots.unmount(t.id);
    }
  }
}

/** One process' stdio over the agent channel. Output before the first listener is kept, so nothing is missed. */
class ProcAttachment implements Attachment {
  private outCbs: ((s: 1 | 2, d: Buffer) => void)[] = [];
  private closeCbs: (() => void)[] = [];
  private early: [1 | 2, Buffer][] = [];
  private closed = false;
  private readonly off: () => void;

  constructor(private readonly chan: AgentChannel, private readonly proc: number) {
    this.off = chan.listen(proc, {
      onOut: (s, d) => {
        if (this.outCbs.length) for (const cb of this.outCbs) cb(s, d);
        else this.early.push([s, d]);
      },
      onExit: () => this.close(),
    });
    chan.onClose(() => this.close());
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.off();
    if (this.closeCbs.length) for (const cb of this.closeCbs) cb();
  }

  onOutput(cb: (stream: 1 | 2, data: Buffer) => void): void {
    this.outCbs.push(cb);
    for (const [s, d] of this.early.splice(0)) cb(s, d);
  }

  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
    if (this.closed) cb();
  }

  writeStdin(data: Buffer): void {
    for (let i = 0; i < data.length; i += 65536) this.chan.send(Op.STDIN, this.proc, data.subarray(i, i + 65536));
  }

  closeStdin(): void {
    this.chan.send(Op.STDIN, this.proc, Buffer.alloc(0));
  }

  detach(): void {
    this.off();
    this.closed = true;
  }
}

/** The files bound over /etc in the guest: the network's resolv.conf and hosts and, as dockerd gives every container,
 *  /etc/hostname; a mount at the same path (a kubelet's /etc/hosts) is the container's file instead. */
async function etcFilesFor(opts: InitOptions): Promise<{ path: string; data: string }[]> {
  const files = [...(await Promise.all((opts.etcFiles ?? []).map(async (f) => ({ path: f.containerPath, data: await readFile(f.hostPath, 'utf8') })))), { path: '/etc/hostname', data: `${opts.hostname}\n` }];
  return files.filter((f) => !opts.mounts.some((m) => m.ContainerPath === f.path));
}

/** What an init process gets beyond any process: the agent's tiny init, OOM score, no_new_privs, masked and read-only
 *  paths of its root. */
function initExtras(opts: InitOptions): [string, string | number][] {
  const out: [string, string | number][] = [];
  if (opts.guestInit) out.push(['reaper', 1]);
  if (opts.oomScoreAdj !== undefined) out.push(['oom', opts.oomScoreAdj]);
  const s = opts.security;
  if (s?.NoNewPrivileges === true) out.push(['nnp', 1]);
  for (const g of s?.SupplementalGroups ?? []) out.push(['xgroup', g]);
  for (const p of s?.MaskedPaths ?? []) out.push(['mask', p]);
  for (const p of s?.ReadonlyPaths ?? []) out.push(['ro', p]);
  return out;
}

/** User + system CPU time of a process, ms (clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11] ?? 0) + Number(f[12] ?? 0)) * 10;
}

const isBootTimeout = (e: unknown) => e instanceof SiloError && e.code === 'SILO_VM_BOOT';

function signalNumber(s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  const n = (osc.signals as Record<string, number>)[s.startsWith('SIG') ? s : `SIG${s}`];
  if (!n) throw invalid(`unknown signal ${s}`);
  return n;
}
