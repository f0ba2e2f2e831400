// Containers of pod sandboxes: each is a compute system that joins its sandbox's namespaces; its CRI metadata is in
// its labels (meta.ts). Create, start, stop, remove, status, list, resources, logs, statistics and ExecSync.

import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { invalid, isSiloError, SiloError } from '../../common/errors.js';
import type { ComputeSystemRecord, CreateSystemRequest } from '../../compute/types.js';
import type { Services } from '../../host/services.js';
import type { Statistics } from '../../compute/backend.js';
import { metaOf, nanos, selects, type ContainerMeta } from './meta.js';
import { isolationOf } from './runtime.js';
import { ignoreGone, type Sandboxes } from './sandboxes.js';
import { containerSpec, resourcesSpec, type ContainerConfig, type CriResources } from './translate.js';

type Entry = { rec: ComputeSystemRecord; meta: ContainerMeta };

const notFoundCri = (what: string, id: string) => new SiloError('NotFound', 'SILO_NOT_FOUND', `${what} ${id} not found`);

export class Containers {
  constructor(
    private readonly s: Services,
    private readonly sandboxes: Sandboxes,
    /** Where scratches live: the writable layers' filesystem id, as ImageFsInfo's container filesystem names it. */
    private readonly storageRoot = '',
  ) {}

  all(): Entry[] {
    const out: Entry[] = [];
    for (const rec of this.s.compute.list(true)) {
      const meta = metaOf(rec);
      if (meta?.kind === 'container') out.push({ rec, meta });
    }
    return out;
  }

  inSandbox(sandboxId: string): ComputeSystemRecord[] {
    return this.all().filter((c) => c.meta.sandboxId === sandboxId).map((c) => c.rec);
  }

  get(id: string): Entry {
    if (!id) throw invalid('a container id is required');
    const hits = this.all().filter((x) => x.rec.Id === id || x.rec.Id.startsWith(id));
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) throw invalid(`container id ${id} is ambiguous`);
    throw notFoundCri('container', id);
  }

  private find(id: string): Entry | undefined {
    try {
      return this.get(id);
    } catch (e) {
      if (isSiloError(e) && e.class === 'NotFound') return undefined;
      throw e;
    }
  }

  async create(req: { pod_sandbox_id: string; config?: ContainerConfig }): Promise<string> {
    const sb = this.sandboxes.get(req.pod_sandbox_id);
    if (!this.sandboxes.ready(sb.rec)) throw invalid(`pod sandbox ${sb.rec.Id} is not ready`);
    if (!req.config) throw invalid('a container config is required');
    const ref = req.config.image?.image;
    if (!ref) throw invalid('a container config needs an image');
    const image = await this.s.storage.getImage(ref).catch((e) => {
      throw isSiloError(e) && e.class === 'NotFound' ? notFoundCri('image', ref) : e;
    });
    const { spec, meta } = containerSpec({ sandboxId: sb.rec.Id, sandbox: sb.meta, config: req.config, image, isolation: isolationOf(sb.meta.runtimeHandler, this.s.compute.isolations()) });
    // The kubelet makes the pod's log directory; the container's own subdirectory and missing bind sources are the
    // runtime's to make (as containerd makes them).
    if (meta.logPath) await mkdir(dirname(meta.logPath), { recursive: true });
    for (const m of req.config.mounts ?? []) {
      if (m.host_path && !(await stat(m.host_path).catch(() => undefined))) await mkdir(m.host_path, { recursive: true });
    }
    const rec = await this.s.compute.create(spec as unknown as CreateSystemRequest);
    return rec.Id;
  }

  async start(id: string): Promise<void> {
    const c = this.get(id);
    if (c.rec.State !== 'Created') throw invalid(`container ${c.rec.Id} is ${c.rec.State.toLowerCase()}, not created: it cannot be started`);
    await this.s.compute.start(c.rec.Id);
  }

  /** SIGTERM (or the image's stop signal), then SIGKILL after `timeout` seconds; an unknown container is no error. */
  async stop(id: string, timeout: number): Promise<void> {
    const c = this.find(id);
    if (!c) return;
    await ignoreGone(this.s.compute.shutdown(c.rec.Id, { TimeoutSeconds: Math.max(0, timeout) }));
  }

  async remove(id: string): Promise<void> {
    const c = this.find(id);
    if (!c) return;
    await ignoreGone(this.s.compute.remove(c.rec.Id, { force: true }));
  }

  state(rec: ComputeSystemRecord): string {
    if (rec.State === 'Created') return 'CONTAINER_CREATED';
    if (rec.State === 'Running' || rec.State === 'Paused') return 'CONTAINER_RUNNING';
    return 'CONTAINER_EXITED';
  }

  private summary({ rec, meta }: Entry) {
    return {
      id: rec.Id,
      pod_sandbox_id: meta.sandboxId,
      metadata: meta.metadata,
      image: meta.image,
      image_ref: rec.ImageId,
      image_id: rec.ImageId,
      state: this.state(rec),
      created_at: nanos(rec.Created),
      labels: meta.labels,
      annotations: meta.annotations,
    };
  }

  list(filter: { id?: string; state?: { state: string } | null; pod_sandbox_id?: string; label_selector?: Record<string, string> } | undefined) {
    return this.all()
      .filter((e) => {
        if (filter?.id && !e.rec.Id.startsWith(filter.id)) return false;
        if (filter?.pod_sandbox_id && !e.meta.sandboxId.startsWith(filter.pod_sandbox_id)) return false;
        if (filter?.state && filter.state.state !== this.state(e.rec)) return false;
        return selects(filter?.label_selector, e.meta.labels);
      })
      .map((e) => this.summary(e));
  }

  statusOf(e: Entry) {
    const { rec, meta } = e;
    const exited = rec.State === 'Stopped';
    const reason = exited ? (rec.OOMKilled ? 'OOMKilled' : rec.ExitCode === 0 ? 'Completed' : 'Error') : '';
    const sec = (rec.Document.Container as { Security?: { RunAsUser?: number; RunAsGroup?: number } }).Security;
    const uid = sec?.RunAsUser;
    return {
      ...this.summary(e),
      started_at: nanos(rec.StartedAt),
      finished_at: exited ? nanos(rec.FinishedAt) : 0,
      exit_code: exited ? (rec.ExitCode ?? 0) : 0,
      reason,
      message: '',
      mounts: meta.mounts,
      log_path: meta.logPath,
      resources: meta.resources ? { linux: meta.resources } : null,
      user: uid !== undefined ? { linux: { uid, gid: sec?.RunAsGroup ?? 0, supplemental_groups: [] } } : null,
    };
  }

  status(id: string, verbose: boolean) {
    const e = this.get(id);
    const info = verbose ? { info: JSON.stringify({ pid: e.rec.Pid ?? 0, name: e.rec.Name, sandboxID: e.meta.sandboxId }) } : {};
    return { status: this.statusOf(e), info };
  }

  async updateResources(id: string, r: CriResources | null | undefined): Promise<void> {
    const e = this.get(id);
    if (!r) return;
    const spec = resourcesSpec(r) as { Memory?: { SizeInMB: number }; Processor?: Record<string, unknown>; OomScoreAdj?: number };
    if (spec.OomScoreAdj !== undefined) throw invalid('oom_score_adj cannot change on a created container');
    if (spec.Memory) await this.s.compute.modify(e.rec.Id, { ResourcePath: 'Container/Memory/SizeInMB', Settings: spec.Memory.SizeInMB });
    if (spec.Processor) await this.s.compute.modify(e.rec.Id, { ResourcePath: 'Container/Processor', Settings: spec.Processor });
  }

  /** The kubelet rotated the log file: the monitor opens it again at its path. */
  async reopenLog(id: string): Promise<void> {
    const e = this.get(id);
    if (e.rec.State !== 'Running') throw invalid(`container ${e.rec.Id} is not running: there is no log to reopen`);
    await this.s.compute.reopenLog(e.rec.Id);
  }

  /** ExecSync: run, collect stdout and stderr, the exit code; past `timeout` seconds (0 = none) the process is killed. */
  async execSync(id: string, cmd: string[], timeout: number): Promise<{ stdout: Buffer; stderr: Buffer; exit_code: number }> {
    const e = this.get(id);
    if (!cmd.length) throw invalid('no command given');
    const x = this.s.compute.execs.create(e.rec.Id, { CommandArgs: cmd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    const exited = new Promise<number>((resolve) => {
      const off = this.s.events.subscribe((ev) => {
        if (ev.Action === 'exec_die' && ev.Attributes.execID === x.Id) {
          off();
          resolve(Number(ev.Attributes.exitCode));
        }
      });
    });
    await this.s.compute.execs.start(x.Id, { wantStdin: false, onOutput: (s, d) => (s === 2 ? err : out).push(d), onEnd: () => ended() });
    const all = Promise.all([done, exited]).then(([, code]) => code);
    if (timeout > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeout * 1000)));
      const r = await Promise.race([all, timedOut]);
      clearTimeout(timer);
      if (r === 'timeout') {
        await this.s.compute.execs.terminate(x.Id);
        // Answer once its monitor has seen it die: the caller may look for the process right after.
        await Promise.race([all, new Promise((r) => setTimeout(r, 3000))]);
        throw Object.assign(new Error(`command ${JSON.stringify(cmd)} timed out after ${timeout}s`), { grpcCode: 4 });
      }
      return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), exit_code: r };
    }
    const code = await all;
    return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), exit_code: code };
  }

  async stats(e: Entry) {
    return (await this.sample(e)).stats;
  }

  /** The CRI's stats of a container and the compute service's Statistics they came from (a pod's sum needs both). */
  private async sample(e: Entry) {
    const now = Date.now() * 1e6;
    const attributes = { id: e.rec.Id, metadata: e.meta.metadata, labels: e.meta.labels, annotations: e.meta.annotations };
    let st: Statistics | undefined;
    if (e.rec.State === 'Running' || e.rec.State === 'Paused') {
      st = (await this.s.compute.properties(e.rec.Id, ['Statistics']).catch(() => ({ Statistics: undefined }))).Statistics;
    }
    return { st, stats: { attributes, ...criUsage(st, now), writable_layer: await writableLayer(this.s, e.rec.Id, this.storageRoot, now) } };
  }

  async statsOf(id: string) {
    return this.stats(this.get(id));
  }

  async listStats(filter: { id?: string; pod_sandbox_id?: string; label_selector?: Record<string, string> } | undefined) {
    return (await this.listSamples(filter)).map((x) => x.stats);
  }

  /** listStats with each container's Statistics beside its CRI stats. */
  async listSamples(filter: { id?: string; pod_sandbox_id?: string; label_selector?: Record<string, string> } | undefined) {
    const es = this.all().filter((e) => {
      if (filter?.id && !e.rec.Id.startsWith(filter.id)) return false;
      if (filter?.pod_sandbox_id && !e.meta.sandboxId.startsWith(filter.pod_sandbox_id)) return false;
      return selects(filter?.label_selector, e.meta.labels);
    });
    return Promise.all(es.map((e) => this.sample(e)));
  }
}

/** A compute system's cgroup statistics as the CRI's CPU and memory usage. */
export function criUsage(st: Statistics | undefined, now: number) {
  if (!st) return { cpu: { timestamp: now, usage_core_nano_seconds: { value: 0 }, usage_nano_cores: null }, memory: { timestamp: now, working_set_bytes: { value: 0 }, usage_bytes: { value: 0 } } };
  return {
    cpu: { timestamp: now, usage_core_nano_seconds: { value: st.cpu.totalNs }, usage_nano_cores: null },
    memory: {
      timestamp: now,
      working_set_bytes: { value: st.memory.usageBytes },
      usage_bytes: { value: st.memory.usageBytes },
      ...(st.memory.limitBytes > 0 && st.memory.limitBytes < 2 ** 62 ? { available_bytes: { value: Math.max(0, st.memory.limitBytes - st.memory.usageBytes) } } : {}),
    },
  };
}

/** The container's writable layer as the CRI counts it: its scratch filesystem's bytes and inodes in use. */
export async function writableLayer(s: Services, id: string, storageRoot: string, now: number) {
  const u = await s.compute.scratchUsage(id).catch(() => undefined);
  return { timestamp: now, fs_id: { mountpoint: storageRoot }, used_bytes: { value: u?.usedBytes ?? 0 }, inodes_used: { value: u?.inodesUsed ?? 0 } };
}
