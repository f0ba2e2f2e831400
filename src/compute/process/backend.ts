// The `process` isolation backend: one runc container per Silo container, each under its own conmon so that
// containers outlive the daemon. Everything about a container is found again from its id and the directories:
//   <runDir>/runc              runc's state root
//   <runDir>/b/<id>/           bundle: config.json, pidfiles, conmon's attach socket and ctl/winsz FIFOs
//   <runDir>/x/<execId>/       one exec: process.json, pidfiles, attach socket, ctl FIFO, `owner` (container id)
//   <stateDir>/<id>/           survives daemon restarts: ctr.log (k8s-file), exit and oom (conmon's persist dir)
//   <runDir>/rootfs/<id>       the root storage described, mounted (<runDir>/scratch/<id> under it; ../rootfs-mount.ts)

import { mkdir, readFile, readdir, rm, rmdir, stat, unlink, writeFile, open } from 'node:fs/promises';
import { unmountAll } from '../../common/loop.js';
import { constants, mkdirSync, readdirSync, readFileSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { alreadyExists, badState, invalid, notFound } from '../../common/errors.js';
import { writeFileAtomic, writeJsonAtomic, readJson, readSmallText, removeFile } from '../../common/atomic.js';
import type {
  Attachment, CopyTarget, ExecOptions, ExitStatus, InitOptions, IsolationBackend, LogEntry, MappedDirectory, ProcessInfo, Resources, RuntimeState, Statistics,
} from '../backend.js';
import type { RootDescription } from '../../storage/types.js';
import { hostTree, readSmallFile, TreeFiles, type Tree } from '../archive.js';
import { InRoot } from './inroot.js';
import { RootMounts } from '../rootfs-mount.js';
import { removeFindings, strayMounts, type Finding } from '../../common/leaks.js';
import { buildProcess, buildSpec, cgroupsPath, CPU_PERIOD, weightToShares, type ProcessSecurity } from './spec.js';
import { loadSeccompProfile, resolveBlockIO, resolveDevices, supplementalGids } from './hostside.js';
import { daemonCapabilities } from '../spec/capabilities.js';
import { resolveUserInRootfs, uidNamesOf } from '../user.js';
import { checkCwdInRoot, checkRootfs } from './rootfs.js';
import { startConmon } from './conmon.js';
import { Runc } from './runc.js';
import { AttachHub, connectAttach } from './attach.js';
import { fileExists, logFiles, readLogFile } from '../logs.js';
import { filePlan, settleLog, startLog, unsettled } from './logrotate.js';
import { Job, processList } from './cgroup.js';
import { conmonAlive, waitGone, killConmon } from './proc.js';

export interface BackendConfig {
  stateDir: string;
  runDir: string;
  cgroupParent: string;
  runc: string;
  conmon: string;
  nofileHard: number;
  /** Rotation of the backend's own log files unless a create says: bytes (-1 none) and files kept. */
  logMaxSize: number;
  logMaxFiles: number;
}

/** Where a system's init output goes and when it rotates (maxSize -1: never); `log.json` in its state. */
interface LogPlace { driver: 'file' | 'none'; path: string; maxSize?: number; maxFiles?: number }

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** sun_path is 108 bytes including the NUL. */
export const MAX_SOCKET_PATH = 107;

/** The longest socket path under the backend's run dir: conmon's attach socket in a bundle or an exec's directory,
 *  each named by a 64-hex id. The daemon refuses a run dir that leaves it no room, before making anything. */
export function longestSocketPath(runDir: string): string {
  return join(runDir, 'b', 'f'.repeat(64), 'attach');
}

function checkId(id: string, what = 'container id'): void {
  if (!ID_RE.test(id)) throw invalid(`invalid ${what}: ${id}`);
}

export class ProcessBackend extends TreeFiles implements IsolationBackend {
  private readonly runc: Runc;
  readonly roots: RootMounts;
  /** Each container's shared connection to its monitor's attach socket (attach.ts says why it is shared). */
  private readonly hubs = new Map<string, Promise<AttachHub>>();

  constructor(private readonly cfg: BackendConfig) {
    super();
    this.runc = new Runc(cfg.runc, join(cfg.runDir, 'runc'));
    this.roots = new RootMounts(cfg.runDir);
  }

  private bundle(id: string) { return join(this.cfg.runDir, 'b', id); }
  private execDir(execId: string) { return join(this.cfg.runDir, 'x', execId); }
  private stateOf(id: string) { return join(this.cfg.stateDir, id); }
  /** The system's cgroup: under the daemon's parent, or under the one its create asked for (recorded in its state). */
  private async job(id: string) {
    const parent = readSmallText(join(this.stateOf(id), 'cgroup-parent')) || this.cfg.cgroupParent;
    return new Job(cgroupsPath(parent, id));
  }

  private async exists(id: string): Promise<boolean> {
    checkId(id);
    return (await fileExists(this.bundle(id))) || (await fileExists(this.stateOf(id))) || (await this.runc.state(id)) !== undefined;
  }

  private async mustExist(id: string): Promise<void> {
    if (!(await this.exists(id))) throw notFound('container', id);
  }

  private async rootfsOf(id: string): Promise<{ rootfs: string; hostname: string; security?: ProcessSecurity }> {
    type P = { capabilities?: { bounding?: string[] }; noNewPrivileges?: boolean; rlimits?: ProcessSecurity['rlimits'] };
    const spec = await readJson<{ root?: { path?: string }; hostname?: string; process?: P }>(join(this.bundle(id), 'config.json'));
    if (!spec?.root?.path) throw notFound('container', id);
    const p = spec.process;
    // An exec'd process gets the init's capabilities, no-new-privileges and limits, as in docker.
    const security = p?.capabilities?.bounding && p.rlimits ? { capabilities: p.capabilities.bounding, noNewPrivileges: !!p.noNewPrivileges, rlimits: p.rlimits } : undefined;
    return { rootfs: spec.root.path, hostname: spec.hostname ?? '', security };
  }

  /** Where the init's output goes: the caller's path (CRI), the backend's own file, or nowhere. */
  private async logOf(id: string): Promise<LogPlace> {
    const own = { driver: 'file' as const, path: join(this.stateOf(id), 'ctr.log') };
    return (await readJson<LogPlace>(join(this.stateOf(id), 'log.json'))) ?? own;
  }

  /** Name what conmon did to a size-bounded log since the last look (./logrotate.ts). */
  private async settle(log: LogPlace): Promise<void> {
    if (log.driver === 'file' && log.maxSize && log.maxSize > 0) await settleLog(log.path, filePlan(log.maxSize, log.maxFiles ?? 1).keep);
  }

  async create(o: InitOptions): Promise<{ pid: number }> {
    checkId(o.id);
    const bundle = this.bundle(o.id);
    const attachPath = join(bundle, 'attach');
    if (attachPath.length > MAX_SOCKET_PATH) throw invalid(`runtime directory too long for an attach socket: ${attachPath}`);
    // runc keeps its state in <root>/<id>: looking for that directory spares a `runc state` on every create.
    if ((await fileExists(bundle)) || (await fileExists(join(this.runc.root, o.id)))) throw alreadyExists(`container ${o.id} already exists`);
    const rootfs = await this.roots.mount(o.id, o.root);
    await checkRootfs(rootfs);
    await checkCwdInRoot(rootfs, o.process.cwd);
    const sec = o.security ?? {};
    const [user, groups, devices, seccompProfile, blockIO] = await Promise.all([
      resolveUserInRootfs(rootfs, o.process.user),
      supplementalGids(rootfs, sec.SupplementalGroups),
      resolveDevices(o.devices, !!sec.Privileged),
      sec.Seccomp?.Profile === 'localhost' && !sec.Privileged ? loadSeccompProfile(sec.Seccomp.LocalhostPath!) : undefined,
      resolveBlockIO(o.blockIO),
    ]);
    user.additionalGids = [...new Set([...user.additionalGids, ...groups])];
    // Subpaths are resolved now, inside their directory, and bind-mounted from the fd that resolution opened onto a
    // staging path runc binds from (detached once runc has made the container's mounts): nothing swapped into the
    // volume since any check can lead the mount out of it.
    await this.dropSubpathMounts(o.id);
    const subs: (() => Promise<void>)[] = [];
    const release = () => Promise.all(subs.splice(0).map((f) => f())).then(() => this.dropSubpathMounts(o.id));
    let mounts: MappedDirectory[];
    try {
      mounts = await Promise.all(o.mounts.map((m, i) => (m.Subpath ? this.stageSubpath(o.id, i, m, subs) : m)));
    } catch (e) {
      await release();
      throw e;
    }
    const spec = buildSpec(
      { ...o, rootfs, mounts, etcFiles: this.writeRuntimeFiles(o.id, o.etcFiles ?? [], o.hostname) },
      { cgroupParent: o.cgroupParent ?? this.cfg.cgroupParent, nofileHard: this.cfg.nofileHard, user, daemonCaps: daemonCapabilities(), devices, seccompProfile, daemonOomScoreAdj: await ownOomScoreAdj(), ...(blockIO ? { blockIO } : {}) },
    );
    const state = this.stateOf(o.id);
    // The backend's own file rotates by the daemon's defaults; a caller's path (the CRI's) is rotated by its caller.
    const log: LogPlace = {
      driver: o.log?.Driver ?? 'file',
      path: o.log?.Path ?? join(state, 'ctr.log'),
      maxSize: o.log?.MaxSizeInBytes ?? (o.log?.Path ? -1 : this.cfg.logMaxSize),
      maxFiles: o.log?.MaxFiles ?? (o.log?.Path ? 1 : this.cfg.logMaxFiles),
    };
    mkdirSync(bundle, { recursive: true, mode: 0o700 });
    // An earlier run's exit record must not be taken for this run's; its log is kept and appended to, as docker's.
    await this.forgetExit(o.id);
    mkdirSync(state, { recursive: true, mode: 0o700 });
    try {
      // Exec'd processes get the explicit supplementary groups too (docker's --group-add, the CRI's).
      if (groups.length) await writeJsonAtomic(join(bundle, 'groups.json'), groups, { durable: false });
      await writeJsonAtomic(join(state, 'log.json'), log);
      const plan = log.driver === 'file' && log.maxSize && log.maxSize > 0 ? filePlan(log.maxSize, log.maxFiles ?? 1) : undefined;
      if (plan) await startLog(log.path, plan.keep);
      if (o.cgroupParent) await writeFileAtomic(join(state, 'cgroup-parent'), o.cgroupParent);
      else removeFile(join(state, 'cgroup-parent'));
      await writeJsonAtomic(join(bundle, 'config.json'), spec, { durable: false }); // the bundle is made again at each start
      const h = startConmon({
        conmon: this.cfg.conmon, runc: this.cfg.runc, runcRoot: this.runc.root, cid: o.id, cuuid: o.id, name: o.name || o.id,
        bundle, pidFile: join(bundle, 'pid'), conmonPidFile: join(bundle, 'conmon.pid'), logPath: log.driver === 'none' ? undefined : log.path,
        // conmon replaces the file before a record would pass its size; the daemon names the files (./logrotate.ts).
        logSizeMax: plan?.fileSize,
        persistDir: state, stdin: o.process.stdin, leaveStdinOpen: o.process.stdinOnce === false, tty: o.process.tty,
      });
      return { pid: await h.pid };
    } catch (e) {
      await this.delete(o.id, { force: true }).catch(() => {});
      throw e;
    } finally {
      await release();
    }
  }

  /**
   * The files bound over /etc — the network's hosts and resolv.conf (an endpoint's, or with the host's network the
   * host's own) and the hostname — copied into the container's scratch (rootfs-mount.ts: runtimeFiles), so that they
   * are writable as under dockerd while what a container writes stays its own, within its cap: never the host's
   * files, never the daemon's tmpfs. Made again at each start, as dockerd makes them.
   */
  private writeRuntimeFiles(id: string, etc: { hostPath: string; containerPath: string }[], hostname: string): { hostPath: string; containerPath: string }[] {
    const dir = this.roots.runtimeFiles(id);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const files = [...etc.map((f) => ({ containerPath: f.containerPath, data: readFileSync(f.hostPath) })), { containerPath: '/etc/hostname', data: Buffer.from(`${hostname}\n`) }];
    return files.map((f, i) => {
      const hostPath = join(dir, `${i}-${basename(f.containerPath)}`);
      writeFileSync(hostPath, f.data, { mode: 0o644 }); // a few bytes in the page cache: no pool round trip
      return { hostPath, containerPath: f.containerPath };
    });
  }

  private subpathDir(): string {
    return join(this.cfg.runDir, 'sub');
  }

  /** A mapped directory's subpath bound at <run>/sub/<id>.<i> from its fd resolved inside HostPath; `subs` undoes it. */
  private async stageSubpath(id: string, i: number, m: MappedDirectory, subs: (() => Promise<void>)[]): Promise<MappedDirectory> {
    const target = join(this.subpathDir(), `${id}.${i}`);
    await mkdir(this.subpathDir(), { recursive: true, mode: 0o700 });
    const r = await InRoot.open(m.HostPath);
    let bound = false;
    subs.push(async () => {
      if (bound) await r.unbind(target).catch(() => {});
      r.close();
    });
    await r.bindAt(`/${m.Subpath}`, target).catch((e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'ELOOP' ? 'it does not exist in the volume' : (e.code ?? e.message);
      throw invalid(`volume subpath ${m.Subpath} cannot be mounted: ${why}`);
    });
    bound = true;
    return { HostPath: target, ContainerPath: m.ContainerPath, ReadOnly: m.ReadOnly, Propagation: m.Propagation };
  }

  /** Staging mounts of a create that did not get to undo them (a daemon killed meanwhile): detached, then removed. */
  private async dropSubpathMounts(id: string): Promise<void> {
    // Listed synchronously: most containers have none, and this runs at each create and removal.
    let names: string[] = [];
    try {
      names = readdirSync(this.subpathDir());
    } catch {
      return; // none made yet
    }
    for (const e of names) {
      if (!e.startsWith(`${id}.`)) continue;
      const p = join(this.subpathDir(), e);
      await unmountAll(p);
      // Never recursive: were it still mounted, that would walk into the volume.
      await rmdir(p).catch(() => rm(p).catch(() => {}));
    }
  }

  async attach(id: string): Promise<Attachment> {
    checkId(id);
    const p = join(this.bundle(id), 'attach');
    if (!(await fileExists(p))) {
      await this.mustExist(id);
      throw badState(`container ${id} is not running: nothing to attach to`);
    }
    for (;;) {
      const cur = this.hubs.get(id);
      if (cur) {
        const hub = await cur.catch(() => undefined);
        if (hub?.usable) return hub.join();
        if (this.hubs.get(id) !== cur) continue; // another attach replaced it meanwhile: join that one
      }
      const fresh = connectAttach(p).then((a) => new AttachHub(a));
      this.hubs.set(id, fresh);
      fresh.catch(() => this.hubs.get(id) === fresh && this.hubs.delete(id));
      return (await fresh).join();
    }
  }

  /** Drop the container's attach connection: it has ended or is being removed. */
  private dropHub(id: string): void {
    const h = this.hubs.get(id);
    this.hubs.delete(id);
    void h?.then((x) => x.close(), () => {});
  }

  async start(id: string): Promise<void> {
    checkId(id);
    await this.runc.start(id);
  }

  async kill(id: string, signal: string, all = false): Promise<void> {
    checkId(id);
    await this.runc.kill(id, signal, all);
  }

  async pause(id: string): Promise<void> {
    checkId(id);
    await this.runc.pause(id);
  }

  async resume(id: string): Promise<void> {
    checkId(id);
    await this.runc.resume(id);
  }

  async update(id: string, r: Resources): Promise<void> {
    checkId(id);
    const f: string[] = [];
    if (r.memoryBytes !== undefined && r.memoryBytes > 0) f.push('--memory', String(r.memoryBytes), '--memory-swap', String(r.memoryBytes));
    if (r.cpus !== undefined && r.cpus > 0) f.push('--cpu-period', String(CPU_PERIOD), '--cpu-quota', String(Math.max(1000, Math.round(r.cpus * CPU_PERIOD))));
    if (r.cpuWeight !== undefined && r.cpuWeight > 0) f.push('--cpu-share', String(weightToShares(r.cpuWeight)));
    if (r.cpuShares !== undefined && r.cpuShares > 0) f.push('--cpu-share', String(r.cpuShares));
    if (r.pidsLimit !== undefined && r.pidsLimit > 0) f.push('--pids-limit', String(r.pidsLimit));
    if (r.memoryReservationBytes !== undefined) f.push('--memory-reservation', String(r.memoryReservationBytes));
    if (r.cpusetCpus) f.push('--cpuset-cpus', r.cpusetCpus);
    await this.runc.update(id, f);
  }

  async state(id: string): Promise<RuntimeState> {
    checkId(id);
    const s = await this.runc.state(id);
    if (s) {
      const status = (['created', 'running', 'paused', 'stopped'] as const).find((x) => x === s.status) ?? 'unknown';
      return status === 'stopped' ? { status } : { status, pid: s.pid };
    }
    if (await fileExists(join(this.stateOf(id), 'exit'))) return { status: 'stopped' };
    if (await this.exists(id)) return { status: 'unknown' };
    throw notFound('container', id);
  }

  async exitStatus(id: string): Promise<ExitStatus | undefined> {
    checkId(id);
    const file = join(this.stateOf(id), 'exit');
    let raw: string;
    let mtime: Date;
    // Synchronously (a few bytes conmon wrote): it is looked for at every exit, and is missing while the init runs.
    try {
      const st = statSync(file, { throwIfNoEntry: false });
      if (!st) return undefined;
      raw = readFileSync(file, 'utf8');
      mtime = st.mtime;
    } catch {
      return undefined;
    }
    const exitCode = Number.parseInt(raw.trim(), 10);
    // conmon writes `oom` when the memory cgroup reported an OOM kill; the cgroup counter covers a missed event.
    const oomKilled =
      (await fileExists(join(this.stateOf(id), 'oom'))) ||
      (exitCode === 137 && (await (await this.job(id)).oomKills()) > 0);
    const error = readSmallText(join(this.stateOf(id), 'monitor-lost')) || undefined;
    return { exitCode: Number.isNaN(exitCode) ? -1 : exitCode, finishedAt: mtime.toISOString(), ...(oomKilled ? { oomKilled } : {}), ...(error ? { error } : {}) };
  }

  async waitExit(id: string): Promise<ExitStatus> {
    await this.mustExist(id);
    const dir = this.stateOf(id);
    let wake: (() => void) | undefined;
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(dir, () => wake?.());
      watcher.on('error', () => {});
    } catch {
      watcher = undefined; // poll only
    }
    const log = await this.logOf(id);
    try {
      for (let tick = 0; ; tick++) {
        // First: how soon the daemon looks after conmon replaced a full log is what keeps it (./logrotate.ts).
        await this.settle(log).catch(() => {});
        const st = await this.exitStatus(id);
        if (st) {
          await this.settle(log).catch(() => {});
          return st;
        }
        // A monitor that died without writing the exit file (killed by hand, OOM-killed itself): the runtime says
        // whether the process still lives, and then it is ended (monitorLost), never reported gone while it runs.
        if (tick % 4 === 3 && !(await conmonAlive(join(this.bundle(id), 'conmon.pid')))) {
          const again = await this.exitStatus(id);
          if (again) return again;
          if (!(await fileExists(this.bundle(id))) && !(await fileExists(dir))) throw notFound('container', id);
          return this.monitorLost(id);
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, 250);
          wake = () => { clearTimeout(t); r(); };
        });
        wake = undefined;
      }
    } finally {
      watcher?.close();
    }
  }

  /**
   * The container's conmon is gone without an exit record. No new monitor can adopt the process: conmon is its
   * parent-in-law (subreaper) and holds the only read end of its stdout/stderr, so its output can no longer be
   * collected (its next write is EPIPE, a tty gets a hangup) and its exit code could never be read. As containerd does
   * with a dead shim, Silo ends the process — every process in the container, through the runtime — waits until the
   * runtime sees it gone, and records that honestly: exit 137 with the reason, written where conmon would have
   * written it (so a daemon restart reads the same). A restart policy then starts it again under a new monitor.
   */
  private async monitorLost(id: string): Promise<ExitStatus> {
    const dir = this.stateOf(id);
    let st = await this.runc.state(id).catch(() => undefined);
    const lived = !!st && st.status !== 'stopped';
    if (lived) {
      await this.runc.kill(id, 'SIGKILL', true).catch(() => {});
      // A frozen cgroup (v1) holds the signal until thawed.
      if (st!.status === 'paused') await this.runc.resume(id).catch(() => {});
      for (let i = 0; i < 200 && st && st.status !== 'stopped'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        st = await this.runc.state(id).catch(() => undefined);
      }
      if (st && st.status !== 'stopped') throw badState(`the monitor of ${id} died and its process could not be killed`);
    }
    const error = lived
      ? 'the container\'s monitor (conmon) died while it ran: Silo killed the container, whose output and exit code could no longer be collected'
      : 'the container\'s monitor (conmon) died and left no exit code';
    const exitCode = lived ? 137 : 255;
    await writeFileAtomic(join(dir, 'monitor-lost'), error);
    await writeFileAtomic(join(dir, 'exit'), String(exitCode));
    return { exitCode, finishedAt: new Date().toISOString(), error };
  }

  async statistics(id: string): Promise<Statistics> {
    await this.mustExist(id);
    const job = await this.job(id);
    if (!(await fileExists(job.path('memory'))) && !(await fileExists(job.path('pids')))) throw badState(`container ${id} is not running`);
    return job.statistics();
  }

  async processList(id: string): Promise<ProcessInfo[]> {
    await this.rootfsOf(id); // NotFound for a container the backend does not have
    const pids = await (await this.job(id)).pids();
    // User names from the container's own /etc/passwd, read inside its root while it runs (a symlink swapped in
    // cannot show the host's); names are cosmetic, so none when it cannot be read.
    const names = await this.withTree({ id, name: id, mounts: [] }, (t) => readSmallFile(t, '/etc/passwd', 16 << 20)).catch(() => undefined);
    return processList(pids, uidNamesOf(names ?? ''));
  }

  async resize(id: string, execId: string | undefined, rows: number, cols: number): Promise<void> {
    checkId(id);
    if (execId) checkId(execId, 'exec id');
    if (!(rows > 0 && cols > 0 && rows < 65536 && cols < 65536)) throw invalid(`invalid console size ${rows}x${cols}`);
    await this.control(id, execId, `1 ${Math.floor(rows)} ${Math.floor(cols)}\n`, 'resize');
  }

  async reopenLog(id: string): Promise<void> {
    checkId(id);
    const log = await this.logOf(id);
    if (log.driver === 'none') return;
    await this.control(id, undefined, '2 0 0\n', 'reopen the log of');
    // conmon reopens when it reads its control FIFO: the caller may look for the new file as soon as this returns.
    for (let i = 0; i < 100 && !(await fileExists(log.path)); i++) await new Promise((r) => setTimeout(r, 20));
    if (!(await fileExists(log.path))) throw badState(`the monitor of ${id} did not reopen its log`);
  }

  /** conmon's control FIFO: "<type> <height> <width>\n", type 1 = window resize, 2 = reopen the log. O_NONBLOCK: never
   *  hang on a FIFO nobody reads (ENXIO when conmon is gone). */
  private async control(id: string, execId: string | undefined, msg: string, what: string): Promise<void> {
    const ctl = join(execId ? this.execDir(execId) : this.bundle(id), 'ctl');
    let fh;
    try {
      fh = await open(ctl, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      if (!execId) await this.mustExist(id);
      throw badState(`cannot ${what} ${execId ?? id}: ${(e as Error).message}`);
    }
    try {
      await fh.write(msg);
    } finally {
      await fh.close();
    }
  }

  async exec(id: string, o: ExecOptions): Promise<{ pid: number; attachment: Attachment; exit: Promise<ExitStatus> }> {
    checkId(id);
    checkId(o.execId, 'exec id');
    const st = await this.runc.state(id);
    if (!st) throw notFound('container', id);
    if (st.status !== 'running') throw badState(`container ${id} is ${st.status}, not running`);
    const dir = this.execDir(o.execId);
    if (join(dir, 'attach').length > MAX_SOCKET_PATH) throw invalid(`runtime directory too long for an attach socket`);
    if (await fileExists(dir)) throw alreadyExists(`exec ${o.execId} already exists`);
    const { rootfs, hostname, security } = await this.rootfsOf(id);
    await checkCwdInRoot(rootfs, o.process.cwd);
    const [user, groups] = await Promise.all([resolveUserInRootfs(rootfs, o.process.user), readJson<number[]>(join(this.bundle(id), 'groups.json'))]);
    if (groups?.length) user.additionalGids = [...new Set([...user.additionalGids, ...groups])];
    const proc = buildProcess(o.process, hostname, { nofileHard: this.cfg.nofileHard, user }, security);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let attachment: Attachment | undefined;
    try {
      await writeFile(join(dir, 'owner'), id);
      await writeJsonAtomic(join(dir, 'process.json'), proc, { durable: false });
      const h = startConmon({
        conmon: this.cfg.conmon, runc: this.cfg.runc, runcRoot: this.runc.root, cid: id, cuuid: o.execId, name: o.execId,
        bundle: dir, pidFile: join(dir, 'pid'), conmonPidFile: join(dir, 'conmon.pid'), persistDir: dir,
        stdin: o.process.stdin, tty: o.process.tty, execProcessSpec: join(dir, 'process.json'),
      });
      // Attach first, then let conmon run `runc exec`, so no output is lost.
      await Promise.race([h.attachReady!, h.pid]);
      attachment = await connectAttach(join(dir, 'attach'));
      h.release!();
      const pid = await h.pid;
      const exit = (async (): Promise<ExitStatus> => {
        let code = await h.exitCode!;
        if (code === undefined) {
          const raw = await readFile(join(dir, 'exit'), 'utf8').catch(() => '');
          code = raw ? Number.parseInt(raw, 10) : -1;
        }
        await waitGone(join(dir, 'conmon.pid'), 5000);
        await rm(dir, { recursive: true, force: true });
        return { exitCode: code, finishedAt: new Date().toISOString() };
      })();
      return { pid, attachment, exit };
    } catch (e) {
      attachment?.detach();
      await killConmon(join(dir, 'conmon.pid'), o.execId);
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async readLogs(
    id: string, opts: { follow: boolean; tail?: number; since?: string }, onEntry: (e: LogEntry) => unknown, signal: AbortSignal,
  ): Promise<void> {
    await this.mustExist(id);
    const exitFile = join(this.stateOf(id), 'exit');
    // A container whose monitor is gone will never write more: stop following then too.
    const exited = async () => (await fileExists(exitFile)) || !(await conmonAlive(join(this.bundle(id), 'conmon.pid')));
    const log = await this.logOf(id);
    if (log.driver === 'none') throw badState(`container ${id} keeps no log (its log driver is none)`);
    // Files conmon finished that are not named yet are read in their place (./logrotate.ts).
    const files = async () => {
      const named = await logFiles(log.path);
      return [...named.slice(0, -1), ...(await unsettled(log.path)), log.path];
    };
    await readLogFile(log.path, exited, opts, onEntry, signal, files);
  }

  async delete(id: string, opts: { force?: boolean; keepLogs?: boolean } = {}): Promise<void> {
    checkId(id);
    this.dropHub(id);
    if (opts.force) {
      // An empty job has nothing to kill: runc's state goes by hand, the job below. Else one spawn (no state is no
      // error), not state + delete.
      const empty = (await (await this.job(id)).processCount()) === 0;
      if (!(empty && this.runc.forgetStopped(id))) await this.runc.delete(id, true);
    } else {
      const st = await this.runc.state(id);
      if (st && (st.status === 'running' || st.status === 'paused')) throw badState(`container ${id} is ${st.status}: stop it first or force`);
      if (st) await this.runc.delete(id, true);
    }
    const bundle = this.bundle(id);
    // conmon exits once init is reaped and the exit file written; give it a moment, then make sure.
    if (!(await waitGone(join(bundle, 'conmon.pid'), 5000))) await killConmon(join(bundle, 'conmon.pid'), id);
    await this.deleteExecs(id);
    await this.dropSubpathMounts(id);
    await (await this.job(id)).remove();
    // A few small files on the run dir's tmpfs: removed synchronously (a recursive rm through the thread pool is an
    // lstat, an unlink and their round trips per entry).
    rmSync(bundle, { recursive: true, force: true });
    if (opts.keepLogs) await this.forgetExit(id);
    else {
      // A caller's log path outside the state keeps its log; the names rotation holds beside it go.
      const log = await this.logOf(id);
      if (log.driver === 'file') for (const x of ['cur', 'next', 'tmp']) removeFile(`${log.path}.${x}`);
      // The log files (up to max-size × max-file) are unlinked through the thread pool: freeing them may take the file
      // system a while. The few small files left go with one synchronous rm, not a round trip per entry.
      const state = this.stateOf(id);
      let entries: import('node:fs').Dirent[] = [];
      try {
        entries = readdirSync(state, { withFileTypes: true });
      } catch {
        /* gone already */
      }
      for (const f of entries) if (f.isFile() && f.name.startsWith('ctr.log')) await unlink(join(state, f.name)).catch(() => {});
      rmSync(state, { recursive: true, force: true });
    }
  }

  private async forgetExit(id: string): Promise<void> {
    for (const f of ['exit', 'oom', 'monitor-lost']) removeFile(join(this.stateOf(id), f));
  }

  private async deleteExecs(id: string): Promise<void> {
    const root = join(this.cfg.runDir, 'x');
    let names: string[] = [];
    try {
      names = readdirSync(root); // synchronously, as dropSubpathMounts: usually there is no exec left
    } catch {
      return;
    }
    for (const e of names) {
      const owner = await readFile(join(root, e, 'owner'), 'utf8').catch(() => '');
      if (owner !== id) continue;
      if (!(await waitGone(join(root, e, 'conmon.pid'), 2000))) await killConmon(join(root, e, 'conmon.pid'), e);
      await rm(join(root, e), { recursive: true, force: true });
    }
  }

  /** Exec directories nothing will clean up: no owner (the daemon died between making the directory and naming its
   *  owner), an owner that is not `live`, or a monitor that is gone while nobody waits for it (`idle`: at start). */
  async strayExecs(live: (id: string) => Promise<boolean> | boolean, idle: boolean): Promise<string[]> {
    const root = join(this.cfg.runDir, 'x');
    const out: string[] = [];
    for (const e of await readdir(root).catch(() => [] as string[])) {
      const owner = await readFile(join(root, e, 'owner'), 'utf8').catch(() => '');
      // One being made right now has no owner for a moment: only a directory a few seconds old counts.
      if (!owner && !idle && Date.now() - ((await stat(join(root, e)).catch(() => undefined))?.mtimeMs ?? 0) < 10_000) continue;
      if (!ID_RE.test(owner) || !(await live(owner)) || (idle && !(await conmonAlive(join(root, e, 'conmon.pid'))))) out.push(join(root, e));
    }
    return out;
  }

  /** At start no exec is being made and no one waits for one that ended while the daemon was down. */
  async sweepExecs(): Promise<void> {
    for (const dir of await this.strayExecs((id) => this.exists(id), true)) {
      await killConmon(join(dir, 'conmon.pid'), dir);
      await rm(dir, { recursive: true, force: true });
    }
  }

  async list(): Promise<string[]> {
    const ids = new Set<string>(await this.roots.ids());
    for (const d of [join(this.cfg.runDir, 'b'), this.runc.root, this.cfg.stateDir]) {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory() && ID_RE.test(e.name)) ids.add(e.name);
    }
    return [...ids].sort();
  }

  async leaks(known: ReadonlySet<string>): Promise<Finding[]> {
    const has = (id: string) => known.has(id);
    const out = await strayMounts([this.cfg.runDir, this.cfg.stateDir], has, 'process');
    const parent = this.cfg.cgroupParent;
    for (const ctl of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      for (const d of await readdir(`/sys/fs/cgroup/${ctl}/${parent}`, { withFileTypes: true }).catch(() => [])) {
        if (d.isDirectory() && /^[0-9a-f]{64}$/.test(d.name) && !has(d.name)) {
          out.push({ Kind: 'cgroup', Object: `/sys/fs/cgroup/${ctl}/${parent}/${d.name}`, Why: 'no such container', Owner: 'process' });
        }
      }
    }
    // Monitors are ours by the run directory on their command line.
    for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (!cmd[0]?.endsWith('conmon') || !cmd.some((a) => a.startsWith(this.cfg.runDir + '/'))) continue;
      const cid = cmd[cmd.indexOf('-c') + 1] ?? cmd[cmd.indexOf('--cid') + 1];
      if (cid && !has(cid)) out.push({ Kind: 'monitor', Object: `conmon pid ${pid}`, Why: `container ${cid.slice(0, 12)} does not exist`, Owner: 'process' });
    }
    // An exec's directory outlives its container only if the daemon died at the wrong moment (start sweeps them).
    for (const dir of await this.strayExecs(has, false)) out.push({ Kind: 'runtime', Object: dir, Why: 'exec of no container', Owner: 'process' });
    return out;
  }

  async fixLeaks(found: Finding[]): Promise<void> {
    const mine = found.filter((f) => f.Owner === 'process');
    await removeFindings(mine);
    for (const f of mine) {
      if (f.Kind !== 'runtime' || !f.Object.startsWith(join(this.cfg.runDir, 'x') + '/')) continue;
      await killConmon(join(f.Object, 'conmon.pid'), f.Object);
      await rm(f.Object, { recursive: true, force: true });
    }
  }

  async mountRoot(id: string, root: RootDescription): Promise<void> {
    await this.roots.mount(id, root);
  }

  unmountRoot(id: string): Promise<void> {
    return this.roots.unmount(id);
  }

  /** runc delete of a stopped container removes its state and cgroups, never its root: once the job holds no process
   *  (a process that outlived init, with --pid host, still has the root), the two can go at once. */
  async rootFreeOfRuntime(id: string): Promise<boolean> {
    return (await (await this.job(id)).processCount()) === 0;
  }

  scratchChanges(id: string): Promise<string | undefined> {
    return this.roots.upper(id);
  }

  /**
   * The root as a copy sees it. A container with processes (running, paused or created) is reached inside its own
   * root, through the helper (inroot.ts), so it need not be paused; a stopped one's mounted root (nothing in it can
   * move) by host path. Never a bare mount point, whose writes would land on the host.
   */
  protected async withTree<T>(t: CopyTarget, fn: (tree: Tree) => Promise<T>): Promise<T> {
    // The root's own mount on the host: runc mounts /proc, /dev and the mapped directories only in the container's
    // mount namespace, so the host's view of the overlay is the root as an image layer would hold it.
    if (t.rootOnly) {
      if (!(await this.roots.mounted(t.id))) throw badState(`the root of container ${t.name} is not mounted`);
      return fn(hostTree({ rootfs: this.roots.rootfs(t.id), mounts: [] }));
    }
    const st = await this.runc.state(t.id);
    if (st && st.pid > 0 && (st.status === 'running' || st.status === 'paused' || st.status === 'created')) {
      const r = await InRoot.open(`/proc/${st.pid}/root`);
      try {
        return await fn(r.tree());
      } finally {
        r.close();
      }
    }
    if (!(await this.roots.mounted(t.id))) throw badState(`the root of container ${t.name} is not mounted`);
    return fn(hostTree({ rootfs: this.roots.rootfs(t.id), mounts: t.mounts }));
  }
}

/** The daemon's oom_score_adj (0 when it cannot be read). */
async function ownOomScoreAdj(): Promise<number> {
  return Number(readSmallText('/proc/self/oom_score_adj').trim()) || 0;
}

