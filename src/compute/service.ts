// The compute service (HCS's role): owns every compute system and its processes. It asks the storage service to
// describe a root and the system's isolation backend to mount it (one per isolation mode, chosen by the document's `Isolation` and recorded
// with it) for the silo and job; it is the one writer of system records.

import { conflict, invalid, isSiloError, oneLine, SiloError } from '../common/errors.js';
import { newId } from '../common/ids.js';
import { KeyedLock } from '../common/lock.js';
import { faultPoint } from '../common/fault.js';
import type { IntentLog } from '../common/intents.js';
import type { EventBus } from '../common/events.js';
import type { RootChange } from '../storage/root-diff.js';
import type { ImageConfig, StorageService } from '../storage/types.js';
import type { Readable } from 'node:stream';
import { backendFor, type Backends, type CopyInOptions, type CopyTarget, type ExitStatus, type Isolation, type IsolationBackend, type LogEntry, type PathStat } from './backend.js';
import { NAME_RE, randomName, resolveInit, resourcesOf } from './resolve.js';
import { buildDocument, INIT_BINARY, INIT_PATH, modifiedDocument, validateDocument } from './document.js';
import { StdioSession, type StdioClient } from './sessions.js';
import { check, isActive } from './state.js';
import { SystemStore } from './store.js';
import type { ComputeSystemDocument, ComputeSystemRecord, CreateSystemRequest, SystemProperties } from './types.js';
import { ExecManager } from './exec.js';
import { HealthMonitor, type HealthState } from './health.js';
import { DEFAULT_COPY_IDLE_MS, guardIn, guardOut } from './copy-guard.js';
import { restoreSystems, type RestoreReport } from './restore.js';
import type { Finding } from '../common/leaks.js';
import { SystemNetworking } from './networking.js';
import type { NetworkService } from '../network/types.js';
import { normalizeSignal } from './signals.js';
import { restartDelayMs, shouldRestart } from './restart.js';
import { checkSpecShape } from './spec/validate.js';
import { populateFromImage } from './populate.js';
import { resolveJoins, sharedHostname, sharesNetwork, type Joins } from './joins.js';
import type { Logger } from '../common/log.js';

/** Files the runtime mounts into every container (not the container's own changes). */
const RUNTIME_FILES = ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf'];

export { DEFAULT_SCRATCH_BYTES } from './document.js';

export interface ComputeOptions {
  store: SystemStore;
  storage: StorageService;
  /** One backend per isolation mode; a document without `Isolation` gets the first. */
  backends: Backends;
  /** A copy in or out is given up after this long without data moving (default 2 minutes). */
  copyIdleTimeoutMs?: number;
  network: NetworkService;
  intents: IntentLog;
  events: EventBus;
  log: Logger;
}

export class ComputeService {
  /** Per system: its lifecycle. */
  readonly lock = new KeyedLock();
  /** Per system: its root — mounting, unmounting and copies in and out. Taken after `lock` when both are needed. */
  private readonly roots = new KeyedLock();
  readonly execs: ExecManager;
  private readonly health: HealthMonitor;
  readonly networking: SystemNetworking;
  private readonly intents: IntentLog;
  private readonly store: SystemStore;
  private readonly storage: StorageService;
  private readonly backends: Backends;
  private readonly copyIdleMs: number;
  private readonly events: EventBus;
  private readonly log: Logger;
  /** Clients attached before start, per system. */
  private readonly pending = new Map<string, Set<StdioSession>>();
  private readonly waiters = new Map<string, ((code: number) => void)[]>();
  /** Systems stopped by their restart policy, waiting out the back-off or being started again: the token of the
   *  restart under way, so a later one's is never taken for it. */
  private readonly restartPending = new Map<string, symbol>();
  /** Exit codes of auto-removed systems, so a `wait` that arrives just after removal still gets its answer. */
  private readonly recentExits = new Map<string, number>();
  /** Removals of --rm systems still running after their answers (removeAfterAnswer). */
  private readonly teardowns = new Set<Promise<void>>();
  private readonly watching = new Set<string>();

  constructor(o: ComputeOptions) {
    this.store = o.store;
    this.storage = o.storage;
    if (o.backends.size === 0) throw new Error('the compute service needs at least one isolation backend');
    this.backends = o.backends;
    this.copyIdleMs = o.copyIdleTimeoutMs ?? DEFAULT_COPY_IDLE_MS;
    this.events = o.events;
    this.log = o.log.child({ service: 'compute' });
    this.networking = new SystemNetworking(o.network);
    this.intents = o.intents;
    this.execs = new ExecManager(this.backends, this.events, (ref) => this.runningRecord(ref));
    this.health = new HealthMonitor((id, args, ms) => this.execs.run(id, args, ms), this.events, this.log);
    this.events.subscribe((e) => {
      if (e.Type === 'system' && e.Action === 'destroy') this.health.forget(e.Id);
    });
  }

  /** A running system's health (docker's State.Health), when it has a health check. */
  healthOf(id: string): HealthState | undefined {
    return this.health.get(id);
  }

  /** At daemon start: adopt what an earlier daemon left, finish or undo what it was doing (restore.ts). */
  restore(): Promise<RestoreReport> {
    return restoreSystems({
      store: this.store,
      intents: this.intents,
      backends: this.backends,
      storage: this.storage,
      networking: this.networking,
      log: this.log.child({ phase: 'restore' }),
      setState: (id, state) =>
        this.lock.run(id, async () => {
          const rec = this.store.find(id);
          rec.State = state;
          await this.store.save(rec);
        }),
      purge: (id) => this.purge(id),
      recordExit: (id, st) => this.recordExit(id, st),
      watchExit: (id) => this.watchExit(id),
      mountRoot: (rec) => this.mountRoot(rec),
      unmountRoot: (id) => this.unmountRoot(id),
    });
  }

  /** Leaks of every backend, each judged against this service's systems of its isolation mode. */
  async leaks(): Promise<Finding[]> {
    const out: Finding[] = [];
    for (const [isolation, b] of this.backends) {
      const known = new Set(this.store.all().filter((r) => (r.Document.Isolation ?? 'process') === isolation).map((r) => r.Id));
      out.push(...(await b.leaks(known)));
    }
    return out;
  }

  async fixLeaks(found: Finding[]): Promise<void> {
    for (const [isolation, b] of this.backends) await b.fixLeaks(found.filter((f) => f.Owner === isolation));
  }

  /** The isolation modes this host offers, the default first. */
  isolations(): Isolation[] {
    return [...this.backends.keys()];
  }

  /** The backend a system was created with (its document records the mode). */
  backendOf(rec: ComputeSystemRecord): IsolationBackend {
    return backendFor(this.backends, rec.Document.Isolation, rec.Name);
  }

  list(all: boolean): ComputeSystemRecord[] {
    return this.store.all().filter((r) => all || isActive(r.State));
  }

  get(ref: string): ComputeSystemRecord {
    return this.store.find(ref);
  }

  async create(req: CreateSystemRequest): Promise<ComputeSystemRecord> {
    const name = req.Name?.replace(/^\//, '');
    if (name !== undefined && !NAME_RE.test(name)) throw invalid(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    checkSpecShape(req);
    const image = await this.storage.getImage(req.Image);
    const id = newId();
    const doc = buildDocument(id, req, image, this.isolations()[0]);
    await validateDocument(doc, this.isolations());
    // Another system's namespace is named by its id from here on: a rename or a new system with its name changes nothing.
    for (const [kind, ref] of Object.entries(doc.Container.Namespaces ?? {})) {
      if (ref?.Mode !== 'system') continue;
      try {
        ref.Target = this.store.find(ref.Target!).Id;
      } catch {
        throw invalid(`Namespaces.${kind}: no such system: ${ref.Target}`);
      }
    }
    if (doc.HostingSystemId !== undefined) this.checkHost(doc);
    // What the backend cannot do, refused now (namespace targets and the hosting system are ids by here).
    this.backends.get(doc.Isolation)?.checkDocument?.(doc);
    await this.backends.get(doc.Isolation)?.prepareDocument?.(doc);
    const shared = sharedHostname(doc, (t) => this.store.find(t));
    if (shared !== undefined) {
      if (req.Document?.Container?.GuestOs) throw invalid('conflicting options: a hostname and a shared UTS or network namespace');
      doc.Container.GuestOs.HostName = shared;
    }
    const init = resolveInit(doc, image.config);

    return this.lock.run(`name:${name ?? ''}`, async () => {
      if (name !== undefined && this.store.nameTaken(name)) {
        const other = this.store.find(name);
        throw conflict(`Conflict. The container name "/${name}" is already in use by container "${other.Id}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
      const rec: ComputeSystemRecord = {
        Id: id,
        Name: name ?? randomName((n) => this.store.nameTaken(n)),
        Created: new Date().toISOString(),
        State: 'Created',
        Document: doc,
        Init: init,
        ImageId: image.id,
        ImageName: req.Image,
        RestartCount: 0,
      };
      // If the daemon dies while the root or network is being made, recovery finds the intent and rolls it back.
      await this.intents.with('system.create', id, async () => {
        // Not durable yet: until the record is saved again below, the intent (durable) stands for it, and a rollback
        // after a machine crash needs no record.
        await this.store.save(rec, { durable: false });
        faultPoint('create.after-record');
        // Root and network do not depend on each other: made side by side, both settled before any rollback.
        const [root, net] = await Promise.allSettled([
          this.mountRoot(rec).then(() => faultPoint('create.after-mount')),
          (sharesNetwork(doc) ? Promise.resolve({}) : this.networking.setup(rec)).then((n) => (faultPoint('create.after-network'), n)),
        ]);
        try {
          if (root.status === 'rejected') throw root.reason;
          if (net.status === 'rejected') throw net.reason;
          rec.Document.Container.Networking = { ...rec.Document.Container.Networking, ...net.value };
          await this.populateVolumes(rec);
          await this.store.save(rec);
        } catch (e) {
          if (net.status === 'fulfilled') rec.Document.Container.Networking = { ...rec.Document.Container.Networking, ...net.value };
          await this.purge(id, rec).catch(() => {});
          throw e;
        }
      });
      this.events.publish('system', 'create', id, { image: req.Image }, rec.Name);
      return rec;
    });
  }

  /** docker's copy-up into the empty volumes the document marks, with the new root mounted (src/compute/populate.ts). */
  private async populateVolumes(rec: ComputeSystemRecord): Promise<void> {
    for (const m of rec.Document.Container.MappedDirectories ?? []) {
      if (!m.PopulateFromImage) continue;
      await this.onRoot(rec.Id, (b, t) => populateFromImage(b, t, m));
    }
  }

  /** A system that runs in another's utility VM: that one is vm-isolated, runs in a VM of its own, and exists. */
  private checkHost(doc: ComputeSystemDocument): void {
    let host: ComputeSystemRecord;
    try {
      host = this.store.find(doc.HostingSystemId!);
    } catch {
      throw invalid(`HostingSystemId: no such system: ${doc.HostingSystemId}`);
    }
    if (doc.Isolation !== 'vm' || host.Document.Isolation !== 'vm') throw invalid('HostingSystemId: only a vm-isolated system runs in another vm-isolated system\'s utility VM');
    if (host.Document.HostingSystemId) throw invalid(`HostingSystemId: ${host.Name} runs in another system's utility VM itself`);
    doc.HostingSystemId = host.Id;
  }

  /** Attach a client to the init process: now if it runs, else when it starts. */
  async attach(ref: string, client: StdioClient): Promise<StdioSession> {
    const rec = this.store.find(ref);
    this.events.publish('system', 'attach', rec.Id, {}, rec.Name);
    if (isActive(rec.State)) {
      const s = new StdioSession(client);
      s.connect(await this.backendOf(rec).attach(rec.Id));
      return s;
    }
    const set = this.pending.get(rec.Id) ?? new Set();
    this.pending.set(rec.Id, set);
    const s = new StdioSession(client, (x) => set.delete(x));
    set.add(s);
    return s;
  }

  async start(ref: string): Promise<void> {
    const rec0 = this.store.find(ref);
    let failed: { code: number; auto: boolean } | undefined;
    try {
      await this.startLocked(rec0.Id, (f) => (failed = f));
    } catch (e) {
      // A run that could not start ends like one that exited: with --rm the system goes, and waiters hear of it
      // (the docker CLI waits for the removal before it exits).
      if (failed) await this.endFailedStart(rec0.Id, failed.code, failed.auto);
      throw e;
    }
  }

  private async endFailedStart(id: string, code: number, auto: boolean): Promise<void> {
    if (auto) {
      this.recentExits.set(id, code);
      setTimeout(() => this.recentExits.delete(id), 60_000).unref();
      await this.remove(id, { force: true }).catch((e) => this.log.warn({ id, err: oneLine(e) }, 'auto-remove failed'));
    }
    this.resolveWaiters(id, code);
  }

  private async startLocked(id: string, onFail: (f: { code: number; auto: boolean }) => void): Promise<void> {
    await this.lock.run(id, async () => {
      const rec = this.store.find(id);
      check('start', rec.State, rec.Name);
      const doc = rec.Document;
      // The intent is on disk before any kernel change; the resolv.conf and hosts files are written meanwhile.
      const [begun, runtime] = await Promise.allSettled([this.intents.begin('system.start', rec.Id, { durable: false }), resolveJoins(rec, (t) => this.store.find(t), this.networking)]);
      if (begun.status === 'rejected') throw begun.reason;
      const done = begun.value;
      // The root lock is held until the runtime has the root, so no copy of a stopped system unmounts it meanwhile.
      // Recorded as running under the root lock too: an unmount queued by the last exit then sees it runs.
      await this.roots.run(rec.Id, async () => {
        let pid: number;
        try {
          pid = await this.runInit(rec, runtime, done);
        } catch (e) {
          // As dockerd: the failed start is the system's last exit (127 not found, 126 not executable, else 255).
          rec.ExitCode = isSiloError(e) && e.code === 'SILO_CMD_NOT_FOUND' ? 127 : isSiloError(e) && e.code === 'SILO_CMD_CANNOT_EXECUTE' ? 126 : 255;
          onFail({ code: rec.ExitCode, auto: doc.AutoRemove === true });
          await this.store.save(rec, { durable: doc.AutoRemove !== true });
          throw e;
        }
        rec.State = 'Running';
        rec.StoppedByUser = false;
        rec.Pid = pid;
        rec.StartedAt = new Date().toISOString();
        delete rec.FinishedAt;
        delete rec.ExitCode;
        delete rec.OOMKilled;
        delete rec.Error;
        await this.store.save(rec);
      });
      await done();
      // As dockerd: a system's networks are connected as it starts and disconnected as it dies (its endpoints live
      // from create to remove, as HNS's do, but carry its traffic only while it runs).
      this.publishNetworks('connect', rec);
      this.publishVolumes('mount', rec);
      this.events.publish('system', 'start', rec.Id, {}, rec.Name);
      this.watchExit(rec.Id);
    });
  }

  /** Make the init process in the backend (the root mounted) and start it; on failure its runtime is undone. */
  private async runInit(rec: ComputeSystemRecord, runtime: PromiseSettledResult<Joins>, done: () => Promise<void>): Promise<number> {
    const doc = rec.Document;
    const backend = this.backendOf(rec);
    // In a VM the guest agent is the tiny init; a system in a pod's VM shares the pod's PID namespace or has its own.
    const guestInit = doc.Init === true && doc.Isolation === 'vm';
    const tini = doc.Init === true && !guestInit;
    const host = doc.HostingSystemId;
    try {
      const root = await this.describeRoot(rec);
      if (runtime.status === 'rejected') throw runtime.reason;
      const net = runtime.value;
      // A stopped system's last run left runtime state behind; its log stays.
      if (rec.State === 'Stopped') await backend.delete(rec.Id, { force: true, keepLogs: true });
      const { pid } = await backend.create({
        id: rec.Id,
        name: rec.Name,
        root,
        interfaces: doc.Isolation === 'vm' ? this.networking.guestInterfaces(doc.Container.Networking) : undefined,
        hostname: doc.Container.GuestOs.HostName,
        process: {
          args: tini ? [INIT_PATH, '--', ...rec.Init.Args] : rec.Init.Args, env: rec.Init.Env, cwd: rec.Init.Cwd, user: rec.Init.User, tty: rec.Init.Tty, stdin: rec.Init.Stdin, stdinOnce: rec.Init.StdinOnce,
          consoleSize: doc.Process.ConsoleSize ? { rows: doc.Process.ConsoleSize[0], cols: doc.Process.ConsoleSize[1] } : undefined,
        },
        mounts: [...(doc.Container.MappedDirectories ?? []), ...(tini ? [{ HostPath: INIT_BINARY, ContainerPath: INIT_PATH, ReadOnly: true }] : [])],
        resources: resourcesOf(doc.Container),
        stopSignal: doc.StopSignal,
        netnsPath: net.netnsPath,
        etcFiles: net.etcFiles,
        namespaces: net.namespaces,
        security: doc.Container.Security,
        log: doc.Container.Logging,
        tmpfs: doc.Container.Tmpfs,
        devices: doc.Container.Devices,
        blockIO: doc.Container.BlockIO,
        ulimits: doc.Container.Ulimits,
        shmSizeBytes: doc.Container.ShmSizeInBytes,
        sysctls: doc.Container.Sysctls,
        oomScoreAdj: doc.Container.OomScoreAdj,
        cgroupParent: doc.Container.CgroupParent,
        ...(guestInit ? { guestInit } : {}),
        ...(doc.VirtualMachine?.KernelPackage ? { kernelPackage: doc.VirtualMachine.KernelPackage } : {}),
        ...(doc.VirtualMachine?.HostedMounts ? { hostedMounts: true } : {}),
        ...(host ? { hostingSystem: { id: host, sharePid: doc.Container.Namespaces?.Pid?.Mode === 'system' } } : {}),
      });
      faultPoint('start.after-runtime-create');
      for (const s of this.pending.get(rec.Id) ?? []) s.connect(await backend.attach(rec.Id));
      this.pending.delete(rec.Id);
      await backend.start(rec.Id);
      return pid;
    } catch (e) {
      await backend.delete(rec.Id, { force: true, keepLogs: true }).catch(() => {});
      for (const s of this.pending.get(rec.Id) ?? []) s.end();
      this.pending.delete(rec.Id);
      await done();
      throw startError(e);
    }
  }

  /** Follow the monitor's exit record of a running system; works for systems adopted after a daemon restart. */
  watchExit(id: string): void {
    if (this.watching.has(id)) return;
    this.watching.add(id);
    const rec = this.store.find(id);
    this.health.watch(id, rec.Name, rec.Document.HealthCheck);
    Promise.resolve()
      .then(() => this.backendOf(this.store.find(id)).waitExit(id))
      .then(
        (st) => this.recordExit(id, st),
        (e) => this.log.warn({ id, err: oneLine(e) }, 'waiting for the exit failed'),
      )
      .finally(() => this.watching.delete(id));
  }

  /** The init process has ended: record it, release the mounts, tell waiters, auto-remove. */
  async recordExit(id: string, st: ExitStatus): Promise<void> {
    const auto = await this.lock.run(id, async () => {
      if (!this.store.has(id)) return false;
      const rec = this.store.find(id);
      if (!isActive(rec.State)) return false;
      this.health.unwatch(id);
      rec.State = 'Stopped';
      rec.ExitCode = st.exitCode;
      rec.FinishedAt = st.finishedAt;
      if (st.oomKilled) rec.OOMKilled = true;
      if (st.error) rec.Error = st.error;
      delete rec.Pid;
      const auto = rec.Document.AutoRemove === true;
      // Marked before anything awaits: a reader must never see it stopped but not restarting between two runs.
      if (shouldRestart(rec)) this.scheduleRestart(rec);
      // An auto-removed system's removal follows under its own durable intent.
      await this.store.save(rec, { durable: !auto });
      if (st.error) {
        this.log.warn({ id, exitCode: st.exitCode }, st.error);
        this.events.publish('system', 'monitor-lost', id, { error: st.error }, rec.Name);
      }
      this.events.publish('system', 'die', id, { exitCode: String(st.exitCode), ...(st.error ? { error: st.error } : {}) }, rec.Name);
      this.publishNetworks('disconnect', rec);
      this.publishVolumes('unmount', rec);
      if (!auto) this.resolveWaiters(id, st.exitCode);
      return auto;
    });
    // Stopped systems keep their scratch but not a loop device or mounts. One removed next loses them in the removal,
    // side by side with its network (and here if that fails; recovery does it after a crash). Not under the system's
    // lock: a copy in progress holds the root until it ends, and a stop or wait must not wait for that.
    if (!auto) await this.unmountRoot(id, { ifStopped: true });
    if (auto) {
      this.recentExits.set(id, st.exitCode);
      setTimeout(() => this.recentExits.delete(id), 60_000).unref();
      await this.removeAfterAnswer(id, st.exitCode);
    }
  }

  /**
   * With --rm, waiters hear of the exit once the system is gone for every client: its removal a durable intent, its
   * runtime deleted, its root unmounted and its scratch's space returned, its record out of view. Its network comes
   * apart after that answer (a crash meanwhile: the next daemon finishes the removal from the intent); a teardown
   * that fails brings the record back into view, as a failed removal leaves it.
   */
  private async removeAfterAnswer(id: string, code: number): Promise<void> {
    const taken = await this.lock
      .run(id, async () => {
        if (!this.store.has(id)) return undefined;
        const rec = this.store.find(id);
        if (isActive(rec.State)) return undefined;
        for (const s of this.pending.get(id) ?? []) s.end();
        this.pending.delete(id);
        const done = await this.intents.begin('system.remove', id);
        try {
          await this.purgeRuntimeAndRoot(id, rec);
        } catch (e) {
          await done();
          throw e;
        }
        this.store.forget(id);
        // Queued on the network service's lock before the answer: whatever the client does next with the network
        // (remove it, publish the same port, take the same address) runs after this teardown.
        const net = this.networking.teardown(rec.Document.Container.Networking);
        net.catch(() => {});
        return { rec, done, net };
      })
      .catch(async (e) => {
        this.log.warn({ id, err: oneLine(e) }, 'auto-remove failed');
        if (this.store.has(id)) await this.lock.run(id, () => this.unmountRoot(id));
        return null;
      });
    // Started again meanwhile or already removed: an ordinary removal if anything is left.
    if (taken === undefined && this.store.has(id)) await this.remove(id, { force: true }).catch((e) => this.log.warn({ id, err: oneLine(e) }, 'auto-remove failed'));
    this.resolveWaiters(id, code);
    if (!taken) return;
    const { rec, done, net } = taken;
    const job = this.lock
      .run(id, async () => {
        await net;
        faultPoint('remove.after-network');
        await this.store.remove(id);
      })
      .then(
        () => this.events.publish('system', 'destroy', id, {}, rec.Name),
        (e) => {
          this.log.warn({ id, err: oneLine(e) }, 'auto-remove failed');
          this.store.keep(rec);
        },
      )
      .finally(() => done())
      .catch(() => {})
      .finally(() => this.teardowns.delete(job));
    this.teardowns.add(job);
  }

  /** Resolves once the removals still running after their answers have ended (the daemon waits for them to stop). */
  async settle(): Promise<void> {
    while (this.teardowns.size) await Promise.allSettled([...this.teardowns]);
  }

  private describeRoot(rec: ComputeSystemRecord) {
    const st = rec.Document.Container.Storage;
    return this.storage.describeRoot(rec.Id, rec.ImageId, { scratchBytes: st.ScratchSizeInBytes!, ...(st.ScratchInMemory ? { inMemory: true } : {}) });
  }

  /** Storage describes the root, the system's backend mounts it. Idempotent. */
  mountRoot(rec: ComputeSystemRecord): Promise<void> {
    return this.roots.run(rec.Id, async () => this.backendOf(rec).mountRoot(rec.Id, await this.describeRoot(rec)));
  }

  /** A stopped system keeps its scratch but not its mounts; failures are logged (recovery retries). `ifStopped`:
   *  only if it is still stopped once the root lock is had (it may have been started or removed meanwhile). */
  unmountRoot(id: string, o: { ifStopped?: boolean } = {}): Promise<void> {
    return this.roots
      .run(id, async () => {
        if (o.ifStopped && (!this.store.has(id) || this.store.find(id).State !== 'Stopped')) return;
        await this.backendOf(this.store.find(id)).unmountRoot(id);
      })
      .catch((e) => this.log.warn({ id, err: oneLine(e) }, 'unmounting the root failed'));
  }

  /** Start it again after a back-off that doubles with each restart (100 ms … 10 s), as docker's restart manager. */
  private scheduleRestart(rec: ComputeSystemRecord): void {
    const token = Symbol(rec.Id);
    this.restartPending.set(rec.Id, token);
    // Pending until the start has ended (the system is running again, or the start failed), not only until the timer.
    const done = () => this.restartPending.get(rec.Id) === token && this.restartPending.delete(rec.Id);
    setTimeout(() => {
      if (this.restartPending.get(rec.Id) !== token) return; // cancelled by a forced removal
      void this.lock
        .run(rec.Id, async () => {
          if (!this.store.has(rec.Id)) return false;
          const cur = this.store.find(rec.Id);
          if (cur.State !== 'Stopped' || cur.StoppedByUser) return false;
          cur.RestartCount++;
          await this.store.save(cur);
          return true;
        })
        .then((go) => (go ? this.start(rec.Id).then(() => this.events.publish('system', 'restart', rec.Id, {}, rec.Name)) : undefined))
        .catch((e) => this.log.warn({ id: rec.Id, err: oneLine(e) }, 'restart by policy failed'))
        .finally(done);
    }, restartDelayMs(rec.RestartCount)).unref();
  }

  private resolveWaiters(id: string, code: number): void {
    for (const w of this.waiters.get(id) ?? []) w(code);
    this.waiters.delete(id);
  }

  /** Between two runs of a restart policy: stopped, but about to start again (docker's "restarting"). */
  isRestarting(ref: string): boolean {
    const rec = this.store.find(ref);
    return rec.State === 'Stopped' && !rec.StoppedByUser && this.restartPending.has(rec.Id);
  }

  /** Resolve with the exit code: at once for a stopped system, else at its next exit. */
  async wait(ref: string, condition: 'not-running' | 'next-exit' = 'not-running'): Promise<number> {
    let rec: ComputeSystemRecord;
    try {
      rec = this.store.find(ref);
    } catch (e) {
      const code = this.recentExits.get(ref);
      if (code !== undefined) return code;
      throw e;
    }
    if (condition === 'not-running' && rec.State === 'Stopped') return rec.ExitCode ?? 0;
    return new Promise((resolve) => {
      const list = this.waiters.get(rec.Id) ?? [];
      list.push(resolve);
      this.waiters.set(rec.Id, list);
    });
  }

  async shutdown(ref: string, opts: { TimeoutSeconds?: number; Signal?: string } = {}): Promise<void> {
    const id = this.store.find(ref).Id;
    // Marked even when it is not running: a restart the policy has scheduled must not follow a user's stop.
    await this.markStoppedByUser(id);
    // As in terminate: the state after the await, and the wait below set up before anything else awaits.
    const rec = this.store.find(id);
    if (!isActive(rec.State)) return;
    const timeout = opts.TimeoutSeconds ?? rec.Document.StopTimeoutSeconds ?? 10;
    const sig = normalizeSignal(opts.Signal ?? rec.Document.StopSignal ?? 'SIGTERM');
    const exited = this.wait(rec.Id, 'next-exit');
    if (rec.State === 'Paused') await this.resume(rec.Id).catch(() => {});
    if (timeout > 0) {
      await this.backendOf(rec).kill(rec.Id, sig).catch(() => {});
      const t = await Promise.race([exited.then(() => true), sleep(timeout * 1000).then(() => false)]);
      if (t) return;
    }
    await this.terminate(rec.Id);
  }

  async terminate(ref: string): Promise<void> {
    const id = this.store.find(ref).Id;
    // Marked even when it is not running: a restart the policy has scheduled must not follow a user's stop.
    await this.markStoppedByUser(id);
    // Read again after the await: an exit recorded meanwhile (its waiters already told) must not be waited for.
    const rec = this.store.find(id);
    if (!isActive(rec.State)) return;
    const exited = this.wait(rec.Id, 'next-exit');
    const backend = this.backendOf(rec);
    if (rec.State === 'Paused') await backend.resume(rec.Id).catch(() => {});
    await backend.kill(rec.Id, 'SIGKILL', true).catch(() => {});
    this.watchExit(rec.Id);
    await exited;
  }

  private markStoppedByUser(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      const rec = this.store.find(id);
      if (rec.StoppedByUser) return;
      rec.StoppedByUser = true;
      await this.store.save(rec);
    });
  }

  /** Docker's rename; the DNS name on the networks stays the one the endpoint was made with. */
  async rename(ref: string, newName: string): Promise<void> {
    const name = newName.replace(/^\//, '');
    if (!NAME_RE.test(name)) throw invalid(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const id = this.store.find(ref).Id;
    await this.lock.run(`name:${name}`, () =>
      this.lock.run(id, async () => {
        if (this.store.nameTaken(name)) throw conflict(`Conflict. The container name "/${name}" is already in use by container "${this.store.find(name).Id}". You have to remove (or rename) that container to be able to reuse that name.`);
        const rec = this.store.find(id);
        const old = rec.Name;
        rec.Name = name;
        await this.store.save(rec);
        this.events.publish('system', 'rename', id, { oldName: old }, name);
      }),
    );
  }

  async signal(ref: string, signal: string): Promise<void> {
    const rec = this.store.find(ref);
    check('signal', rec.State, rec.Name);
    const sig = normalizeSignal(signal);
    await this.backendOf(rec).kill(rec.Id, sig);
    this.events.publish('system', 'kill', rec.Id, { signal: sig }, rec.Name);
  }

  pause(ref: string): Promise<void> {
    return this.transition(ref, 'pause', 'Paused', (rec) => this.backendOf(rec).pause(rec.Id));
  }

  resume(ref: string): Promise<void> {
    return this.transition(ref, 'resume', 'Running', (rec) => this.backendOf(rec).resume(rec.Id), 'unpause');
  }

  private async transition(ref: string, op: 'pause' | 'resume', to: 'Paused' | 'Running', act: (rec: ComputeSystemRecord) => Promise<void>, event: string = op): Promise<void> {
    const id = this.store.find(ref).Id;
    await this.lock.run(id, async () => {
      const rec = this.store.find(id);
      check(op, rec.State, rec.Name);
      await act(rec);
      rec.State = to;
      await this.store.save(rec);
      this.events.publish('system', event, id, {}, rec.Name);
    });
  }

  /** HCS Modify: memory, processor and pids limits, applied live to a running system. */
  async modify(ref: string, req: { ResourcePath: string; Settings: unknown }): Promise<void> {
    const id = this.store.find(ref).Id;
    await this.lock.run(id, async () => {
      const rec = this.store.find(id);
      check('modify', rec.State, rec.Name);
      const doc = modifiedDocument(rec.Document, req);
      await validateDocument(doc, this.isolations());
      // Limits change live; a restart policy only matters at the next exit.
      if (isActive(rec.State) && req.ResourcePath.startsWith('Container/')) await this.backendOf(rec).update(id, resourcesOf(doc.Container));
      rec.Document = doc;
      await this.store.save(rec);
      this.events.publish('system', 'update', id, {}, rec.Name);
    });
  }

  async properties(ref: string, types: string[]): Promise<SystemProperties> {
    const rec = this.store.find(ref);
    const out: SystemProperties = {};
    for (const t of types) {
      if (t === 'Statistics') out.Statistics = isActive(rec.State) ? await this.networking.withCounters(this.networkingOf(rec), await this.backendOf(rec).statistics(rec.Id)) : undefined;
      else if (t === 'ProcessList') {
        if (!isActive(rec.State)) throw new SiloError('FailedPrecondition', 'SILO_INVALID_STATE', `container ${rec.Name} is not running (state ${rec.State})`);
        out.ProcessList = await this.backendOf(rec).processList(rec.Id);
      } else throw invalid(`unknown property type ${JSON.stringify(t)}: use Statistics or ProcessList`);
    }
    return out;
  }

  /** The endpoints a system's traffic crosses: its own, or those of the system whose network namespace it joined. */
  private networkingOf(rec: ComputeSystemRecord): ComputeSystemDocument['Container']['Networking'] {
    let cur = rec;
    for (let hops = 0; hops < 8; hops++) {
      const ns = cur.Document.Container.Namespaces?.Network;
      if (ns?.Mode !== 'system' || !ns.Target || !this.store.has(ns.Target)) break;
      cur = this.store.find(ns.Target);
    }
    return cur.Document.Container.Networking;
  }

  async remove(ref: string, opts: { force?: boolean } = {}): Promise<void> {
    const id = this.store.find(ref).Id;
    // A forced removal cancels a pending restart; one that already began is stopped again (a few times at most).
    if (opts.force) this.restartPending.delete(id);
    for (let attempt = 0; ; attempt++) {
      const rec0 = this.store.find(id);
      if (isActive(rec0.State)) {
        if (!opts.force) check('remove', rec0.State, rec0.Name);
        await this.terminate(rec0.Id);
      }
      const done = await this.lock.run(id, async () => {
        if (!this.store.has(id)) return true;
        const rec = this.store.find(id);
        if (opts.force && isActive(rec.State) && attempt < 3) return false;
        check('remove', rec.State, rec.Name);
        for (const s of this.pending.get(rec.Id) ?? []) s.end();
        this.pending.delete(rec.Id);
        await this.intents.with('system.remove', rec.Id, () => this.purge(rec.Id));
        this.events.publish('system', 'destroy', rec.Id, {}, rec.Name);
        return true;
      });
      if (done) return;
    }
  }

  /**
   * An owner whose systems never outlive the daemon that made them (the builder's step containers) says so when it
   * starts: whatever systems of it an earlier daemon left are debris of an interrupted operation and are removed now.
   * Those it creates from then on are its own to remove. Returns how many were removed.
   */
  async registerTransientOwner(owner: string): Promise<number> {
    const debris = this.store.all().filter((r) => r.Document.Owner === owner).map((r) => r.Id);
    let removed = 0;
    for (const id of debris) {
      await this.lock.run(id, () => this.purge(id)).then(
        () => removed++,
        (e) => this.log.warn({ owner, id, err: oneLine(e) }, 'removing a transient system failed'),
      );
    }
    if (removed) this.log.info({ owner, removed }, 'removed the systems an interrupted transient owner left');
    return removed;
  }

  /** The first half of an --rm removal (removeAfterAnswer): the runtime, and the root's mounts and its scratch. */
  private purgeRuntimeAndRoot(id: string, rec: ComputeSystemRecord): Promise<void> {
    const backends = [this.backendOf(rec)];
    return this.takeApart(id, backends, true, () => [this.removeRoot(id, backends)]);
  }

  /**
   * Remove every piece of a system, in the reverse order of creation, whatever state it is in; what is already gone
   * is no error. Used by remove, by a failed create, and by recovery to finish or roll back interrupted operations.
   * `made`: the record as a failed create holds it (with the network it got), newer than the stored one.
   */
  async purge(id: string, made?: ComputeSystemRecord): Promise<void> {
    const rec = made ?? (this.store.has(id) ? this.store.find(id) : undefined);
    // Without a record (a create rolled back before its record was written) any backend may hold a piece of it.
    const backends = rec ? [this.backendOf(rec)] : [...this.backends.values()];
    // With no process left, the network and the root come apart independently.
    await this.takeApart(id, backends, rec !== undefined, () => [
      this.networking.teardown(rec?.Document.Container.Networking).then(() => faultPoint('remove.after-network')),
      this.removeRoot(id, backends),
    ]);
    await this.store.remove(id);
  }

  /**
   * The runtime's delete, then `rest` — or all at once when nothing runs in the system any more (`known`: its backend
   * is known and may say so): a runc delete (≈16 ms) beside the root's unmount (≈9 ms) is the client's wait shortened.
   */
  private async takeApart(id: string, backends: IsolationBackend[], known: boolean, rest: () => Promise<unknown>[]): Promise<void> {
    const runtime = async () => {
      for (const b of backends) await b.delete(id, { force: true });
      faultPoint('remove.after-runtime-delete');
    };
    let results: PromiseSettledResult<unknown>[];
    if (known && (await backends[0].rootFreeOfRuntime?.(id))) results = await Promise.allSettled([runtime(), ...rest()]);
    else {
      await runtime();
      results = await Promise.allSettled(rest());
    }
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** The root's mounts, then its scratch. */
  private removeRoot(id: string, backends: IsolationBackend[]): Promise<void> {
    return this.roots.run(id, async () => {
      for (const b of backends) await b.unmountRoot(id);
      await this.storage.removeRoot(id);
    });
  }

  async commit(ref: string, opts: { name?: string; comment?: string; author?: string; changes?: string[]; config?: ImageConfig; createdBy?: string }) {
    const rec = this.store.find(ref);
    check('commit', rec.State, rec.Name);
    return this.lock.run(rec.Id, async () => {
      // The changes are read where the backend has the root mounted, or from the scratch image when it is not.
      const img = await this.roots.run(rec.Id, async () => {
        const upperDir = await this.backendOf(rec).scratchChanges(rec.Id);
        return this.storage.commit(rec.Id, rec.ImageId, { ...opts, upperDir });
      });
      this.events.publish('system', 'commit', rec.Id, { image: img.id }, rec.Name);
      return img;
    });
  }

  // Copies into and out of a system's root (docker cp, a build's COPY, ADD and WORKDIR) are operations of the compute
  // service, served by the system's backend under the root lock: nobody else mounts or walks a container's root.

  /** docker cp's stat of a container path (the last component not followed) and the path it resolved to. */
  statPath(ref: string, path: string): Promise<{ stat: PathStat; path: string }> {
    return this.onRoot(ref, (b, t) => b.statPath(t, path));
  }

  /** A tar of `path` for `sink`; the root stays as it is until `sink` has finished with it. */
  copyOut(ref: string, path: string, sink: (stat: PathStat, tar: Readable) => Promise<void>): Promise<void> {
    return this.onRoot(ref, (b, t) => b.copyOut(t, path, (stat, tar) => sink(stat, guardOut(tar, this.copyIdleMs))));
  }

  /** A tar of the container's whole root as its own filesystem holds it, without mapped directories (docker export). */
  exportRoot(ref: string, sink: (tar: Readable) => Promise<void>): Promise<void> {
    return this.onRoot(ref, (b, t) => b.copyOut({ ...t, rootOnly: true }, '/', (_stat, tar) => sink(guardOut(tar, this.copyIdleMs))));
  }

  /** What the container changed in its image's files (docker diff), read from its scratch as a commit reads it. */
  async changes(ref: string): Promise<RootChange[]> {
    const rec = this.store.find(ref);
    return this.roots.run(rec.Id, async () => {
      const upperDir = await this.backendOf(rec).scratchChanges(rec.Id);
      const mapped = (rec.Document.Container.MappedDirectories ?? []).map((m) => m.ContainerPath);
      return this.storage.changes(rec.Id, { upperDir, mountPoints: [...mapped, ...RUNTIME_FILES] });
    });
  }

  /** Bytes the container's changes take (docker's SizeRw, what a prune gives back). */
  async changedBytes(ref: string): Promise<number> {
    const rec = this.store.find(ref);
    return this.roots.run(rec.Id, async () => this.storage.scratchBytes(rec.Id, { upperDir: await this.backendOf(rec).scratchChanges(rec.Id) }));
  }

  /** How full the container's scratch is (its filesystem's blocks and inodes in use), as storage counts it: live
   *  while the backend has it mounted, else as last written back. */
  async scratchUsage(ref: string): Promise<{ usedBytes: number; inodesUsed: number } | undefined> {
    const rec = this.store.find(ref);
    // A VM's scratch is mounted in its guest, out of the host kernel's sight: its superblock is what there is.
    return this.roots.run(rec.Id, async () => {
      const mountedAt = await this.backendOf(rec).scratchChanges(rec.Id).catch(() => undefined);
      return this.storage.scratchUsage(rec.Id, { mountedAt });
    });
  }

  copyIn(ref: string, dir: string, tar: AsyncIterable<Uint8Array>, o: CopyInOptions = {}): Promise<void> {
    return this.onRoot(ref, (b, t) => b.copyIn(t, dir, guardIn(tar, this.copyIdleMs), o));
  }

  makeDirectory(ref: string, path: string, owner?: { uid: number; gid: number }): Promise<string> {
    return this.onRoot(ref, (b, t) => b.makeDirectory(t, path, owner));
  }

  readFile(ref: string, path: string, maxBytes = 1 << 20): Promise<string | undefined> {
    return this.onRoot(ref, (b, t) => b.readFile(t, path, maxBytes));
  }

  /**
   * Run a copy on the system's root under its root lock. A running system keeps running: its backend resolves paths
   * inside the container's own root, so nothing is paused (a client that stalls a copy freezes nothing, and a daemon
   * killed meanwhile leaves nothing frozen). A stopped one has its root mounted for the copy and unmounted after.
   */
  private async onRoot<T>(ref: string, fn: (b: IsolationBackend, t: CopyTarget) => Promise<T>): Promise<T> {
    const id = this.store.find(ref).Id;
    return this.roots.run(id, async () => {
      const rec = this.store.find(id);
      const b = this.backendOf(rec);
      const t = { id, name: rec.Name, mounts: rec.Document.Container.MappedDirectories ?? [] };
      if (isActive(rec.State)) return fn(b, t);
      await b.mountRoot(id, await this.describeRoot(rec));
      try {
        return await fn(b, t);
      } finally {
        if (this.store.has(id) && this.store.find(id).State === 'Stopped') await b.unmountRoot(id).catch((e) => this.log.warn({ id, err: oneLine(e) }, 'unmounting the root after a copy failed'));
      }
    });
  }

  /** Entries go to onEntry one at a time; a promise it returns (a slow client) is awaited before the next is read. */
  async logs(ref: string, opts: { follow: boolean; tail?: number; since?: string }, onEntry: (e: LogEntry) => unknown, signal: AbortSignal): Promise<void> {
    const rec = this.store.find(ref);
    // Following a stopped system's log would never end: its monitor is gone.
    await this.backendOf(rec).readLogs(rec.Id, { ...opts, follow: opts.follow && isActive(rec.State) }, onEntry, signal);
  }

  async resize(ref: string, rows: number, cols: number): Promise<void> {
    const rec = this.store.find(ref);
    check('resize', rec.State, rec.Name);
    await this.backendOf(rec).resize(rec.Id, undefined, rows, cols);
  }

  /** The init process' log was rotated by its reader (the CRI's ReopenContainerLog): its monitor opens it again. */
  async reopenLog(ref: string): Promise<void> {
    const rec = this.store.find(ref);
    check('resize', rec.State, rec.Name);
    await this.backendOf(rec).reopenLog(rec.Id);
  }

  /** `network connect`: one more endpoint in the system's namespace. */
  async connect(ref: string, req: { Network: string; IpAddress?: string; Aliases?: string[] }): Promise<string> {
    const id = this.store.find(ref).Id;
    return this.lock.run(id, async () => {
      const rec = this.store.find(id);
      const ep = await this.networking.connect(rec, req.Network, req.IpAddress, req.Aliases);
      const n = rec.Document.Container.Networking!;
      n.Endpoints = [...(n.Endpoints ?? []), ep];
      await this.store.save(rec);
      const net = this.networking.networkOf(this.networking.endpointOf(ep).NetworkId);
      this.publishNetwork('connect', rec, net);
      return ep;
    });
  }

  async disconnect(ref: string, network: string): Promise<void> {
    const id = this.store.find(ref).Id;
    await this.lock.run(id, async () => {
      const rec = this.store.find(id);
      const net = this.networking.networkOf(network);
      const ep = await this.networking.disconnect(rec, network);
      const n = rec.Document.Container.Networking!;
      n.Endpoints = (n.Endpoints ?? []).filter((e) => e !== ep);
      await this.store.save(rec);
      this.publishNetwork('disconnect', rec, net);
    });
  }

  private publishNetwork(action: 'connect' | 'disconnect', rec: ComputeSystemRecord, net: { id: string; name: string; type: string }): void {
    this.events.publish('system', action, rec.Id, { network: net.id, networkName: net.name, networkType: net.type }, rec.Name);
  }

  private publishNetworks(action: 'connect' | 'disconnect', rec: ComputeSystemRecord): void {
    for (const net of this.networking.networksOf(rec.Document.Container.Networking)) this.publishNetwork(action, rec, net);
  }

  /** As dockerd: each volume a system mounts is mounted as it starts and unmounted as it dies (Id the volume's name). */
  private publishVolumes(action: 'mount' | 'unmount', rec: ComputeSystemRecord): void {
    for (const m of rec.Document.Container.MappedDirectories ?? []) {
      const name = this.storage.volumeAt(m.HostPath);
      if (!name) continue;
      const attrs: Record<string, string> = action === 'mount' ? { destination: m.ContainerPath, propagation: m.Propagation ?? '', 'read/write': String(!m.ReadOnly) } : {};
      this.events.publish('volume', action, name, { container: rec.Id, driver: 'local', ...attrs });
    }
  }

  /** Image ids that systems use, so the storage service can refuse to delete them. */
  imageInUse(imageId: string): boolean {
    return this.store.some((r) => r.ImageId === imageId);
  }

  private runningRecord(ref: string): ComputeSystemRecord {
    const rec = this.store.find(ref);
    check('exec', rec.State, rec.Name);
    return rec;
  }
}

/** Runtime start errors classified as docker's CLI expects them (127 not found, 126 cannot execute). */
function startError(e: unknown): unknown {
  const m = oneLine(e);
  if (/executable file not found|no such file or directory/i.test(m)) return new SiloError('InvalidArgument', 'SILO_CMD_NOT_FOUND', `failed to start: ${m}`);
  if (/permission denied|exec format error/i.test(m)) return new SiloError('InvalidArgument', 'SILO_CMD_CANNOT_EXECUTE', `failed to start: ${m}`);
  return isSiloError(e) ? e : new SiloError('Internal', 'SILO_START', `failed to start: ${m}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
