// The daemon: wires the services once, recovers, and serves the native API. Containers are not tied to its life:
// stopping the daemon leaves them running under their monitors, and the next daemon adopts them.

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { arch, cpus, release, totalmem } from 'node:os';
import { run } from '../common/exec.js';
import { hideHostPaths, invalid, oneLine, SiloError } from '../common/errors.js';
import { createLogger, isLogLevel, LOG_LEVELS } from '../common/log.js';
import { longestSocketPath, MAX_SOCKET_PATH, openProcessIsolation } from '../compute/process/index.js';
import { openVmIsolation } from '../compute/vm/index.js';
import { ComputeService } from '../compute/service.js';
import type { Isolation, IsolationBackend } from '../compute/backend.js';
import { SystemStore } from '../compute/store.js';
import { openStorage } from '../storage/index.js';
import { openNetworkService } from '../network/index.js';
import { EventBus } from '../common/events.js';
import { IntentLog } from '../common/intents.js';
import { doctor } from './doctor.js';
import { releaseStartPages } from './release.js';
import { fastifyDoor, lazyDoor } from './lazy-door.js';
import { sweepBuildDebris } from '../api/docker/build/owner.js';
import { prepareDockerState } from '../api/docker/meta.js';
import type { Services } from './services.js';
import { parseLogFiles, parseLogSize, parseWholeNumber } from '../common/logopts.js';
import { openRegistry } from '../storage/registry/index.js';
import { VERSION, API_VERSION } from './version.js';

export interface DaemonOptions {
  stateDir: string;
  runDir: string;
  cgroupParent: string;
  logLevel: string;
  /** Registry hosts file (mirrors per host, insecure hosts): JSON, optional. */
  registryConfig?: string;
  /** `URL` (docker.io's mirror, as dockerd) or `host=URL`, before those of the file. */
  registryMirror?: string[];
  insecureRegistry?: string[];
  /** certs.d: <host>/ca.crt trusted for that registry. */
  certsDir?: string;
  /** Seconds a registry (or its token server) may keep us waiting for an answer or for the next bytes. */
  registryTimeout?: number;
  /** The CRI's socket: default <runDir>/cri.sock; '' serves no CRI. */
  criSocket?: string;
  /** "off": vm-isolated containers always cold-boot (no VM templates, whose shared pages are a side channel). */
  vmTemplates?: string;
  /** Spares kept restored ahead for the next VM containers (--vm-spares, ≈42 MiB each): a whole number from 0 to 8. */
  vmSpares?: string;
  /** Containers' log rotation unless a create says otherwise: docker's max-size (-1: none) and max-file. */
  logMaxSize?: string;
  logMaxFile?: string;
}

export interface Daemon {
  services: Services;
  socketPath: string;
  close(): Promise<void>;
}

export async function startDaemon(o: DaemonOptions): Promise<Daemon> {
  if (!isLogLevel(o.logLevel)) throw invalid(`unknown log level "${o.logLevel}": one of ${LOG_LEVELS.join(', ')}`);
  const longest = longestSocketPath(join(o.runDir, 'runtime'));
  if (longest.length > MAX_SOCKET_PATH) {
    const room = MAX_SOCKET_PATH - (longest.length - o.runDir.length);
    throw invalid(`--run-dir ${o.runDir} is too long: at most ${room} characters, so that a container's attach socket (${longest.length - o.runDir.length} characters below it) fits a socket path's ${MAX_SOCKET_PATH} bytes`);
  }
  const log = createLogger(o.logLevel);
  // No error a client sees names a path on the host.
  hideHostPaths(o.stateDir, o.runDir);
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  await mkdir(o.runDir, { recursive: true, mode: 0o711 });
  const socketPath = join(o.runDir, 'silo.sock');
  await refuseSecondDaemon(socketPath);

  const events = new EventBus();
  const storage = await openStorage({ root: join(o.stateDir, 'storage'), runDir: join(o.runDir, 'storage'), volumes: join(o.stateDir, 'volumes'), events });
  // One backend per isolation mode this host offers; the first is the default.
  const logRotation = { logMaxSize: parseLogSize(o.logMaxSize ?? '20m', '--log-max-size'), logMaxFiles: parseLogFiles(o.logMaxFile ?? '5', '--log-max-file') };
  const vm = await openVmIsolation({ stateDir: join(o.stateDir, 'vm'), runDir: join(o.runDir, 'vm'), cgroupParent: o.cgroupParent, templates: o.vmTemplates !== 'off', spares: parseWholeNumber(o.vmSpares ?? '1', '--vm-spares', 0, 8), ...logRotation, log });
  const backends = new Map<Isolation, IsolationBackend>([
    ['process', await openProcessIsolation({ stateDir: join(o.stateDir, 'runtime'), runDir: join(o.runDir, 'runtime'), cgroupParent: o.cgroupParent, ...logRotation })],
    ['vm', vm],
  ]);
  // Kernel objects of the network service carry the cgroup parent's name too (silo, or a test's silo-test-…).
  const network = await openNetworkService({ stateDir: join(o.stateDir, 'network'), runDir: join(o.runDir, 'network'), prefix: o.cgroupParent, defaultNetwork: true, log, events });
  const store = new SystemStore(join(o.stateDir, 'systems'));
  const intents = new IntentLog(join(o.stateDir, 'intents'));
  // SILO_COPY_IDLE_SECONDS: how long a copy may go without data moving (tests shorten it).
  const copyIdle = Number(process.env.SILO_COPY_IDLE_SECONDS);
  const compute = new ComputeService({ store, storage, backends, network, intents, events, log, ...(copyIdle > 0 ? { copyIdleTimeoutMs: copyIdle * 1000 } : {}) });

  // Storage and the network service restored their own objects as they opened; compute restores its systems.
  const r = await compute.restore();
  if (r.adopted || r.thawed || r.exited || r.orphansRemoved || r.rolledBack) {
    log.child({ service: 'compute' }).info({ adopted: r.adopted, thawed: r.thawed, exited: r.exited, rolledBack: r.rolledBack, orphansRemoved: r.orphansRemoved }, 'recovered the systems of an earlier daemon');
  }
  await sweepBuildDebris(compute, o.stateDir);
  // A full disk at start is no reason not to serve: the door makes what is missing when it is first used.
  await prepareDockerState(o.stateDir).catch((e) => log.warn({ err: oneLine(e) }, 'the Docker door\'s state could not be prepared'));
  await storage.ensureBaseImage();

  const registry = await openRegistry({
    stateDir: join(o.stateDir, 'registry'),
    configFile: o.registryConfig ?? '/etc/silo/registries.json',
    mirrors: o.registryMirror ?? [],
    insecure: o.insecureRegistry ?? [],
    certsDir: o.certsDir ?? '/etc/silo/certs.d',
    timeoutMs: (o.registryTimeout ?? 30) * 1000,
    storage,
    userAgent: `silo/${VERSION}`,
  });

  const tools = await toolVersions();
  const services: Services = {
    compute,
    storage,
    registry,
    network,
    events,
    log,
    doctor: (fix) => doctor({ compute, storage, network }, fix),
    vm,
    version: () => ({ Version: VERSION, ApiVersion: API_VERSION, Os: 'linux', Arch: arch(), Kernel: release(), Node: process.version, ...tools }),
    info: async () => {
      const all = compute.list(true);
      return {
        Systems: all.length,
        // Namespaces and endpoints made ahead for the next creates (the network service owns them).
        EndpointPool: await network.pooled().then((p) => ({ Namespaces: p.namespaces, Endpoints: p.endpoints })),
        // QEMUs launched ahead for the next VM containers (the vm backend's spares).
        VmSpares: vm.spareCount,
        Running: all.filter((s) => s.State === 'Running').length,
        Paused: all.filter((s) => s.State === 'Paused').length,
        Stopped: all.filter((s) => s.State === 'Stopped' || s.State === 'Created').length,
        Images: (await storage.listImages()).length,
        Isolation: compute.isolations(),
        DefaultIsolation: compute.isolations()[0],
        StateDir: o.stateDir,
        RunDir: o.runDir,
        CgroupParent: o.cgroupParent,
        CgroupVersion: 1,
        CPUs: cpus().length,
        MemTotal: totalmem(),
        KernelVersion: release(),
        ...tools,
      };
    },
  };

  // Each front door listens now and loads its server when a client first talks to it (lazy-door.ts).
  const failed = (door: string) => (e: unknown) => log.error({ door, err: oneLine(e) }, 'the front door could not start');
  // A door's server, once loaded, lets go of the pages its loading alone needed (release.ts).
  const loaded = (door: string) => <T>(d: T): T => (releaseStartPages(log, `${door} door`), d);
  const criPath = o.criSocket ?? join(o.runDir, 'cri.sock');
  const storageRoot = join(o.stateDir, 'storage');
  const cri = criPath ? await lazyDoor(criPath, 'connection', async () => (await import('../api/cri/index.js')).criDoor(services, { storageRoot }).then(loaded('cri')), failed('cri')) : undefined;
  const dockerPath = join(o.runDir, 'docker.sock');
  const docker = await lazyDoor(dockerPath, 'data', async () => fastifyDoor((await import('../api/docker/index.js')).buildDockerApi(services)).then(loaded('docker')), failed('docker'));
  // The native socket answers last, so a client that finds it finds the Docker socket ready too.
  const app = await lazyDoor(socketPath, 'data', async () => fastifyDoor((await import('../api/native/server.js')).buildNativeApi(services)).then(loaded('native')), failed('native'));
  await writeFile(join(o.runDir, 'silo.pid'), `${process.pid}\n`);
  log.info({ native: `unix://${socketPath}`, docker: `unix://${dockerPath}`, ...(cri ? { cri: `unix://${criPath}` } : {}), stateDir: o.stateDir }, 'serving');
  return {
    services,
    socketPath,
    close: async () => {
      await Promise.all([app.close(), docker.close(), cri?.close()]);
      await registry.close();
      // --rm removals finishing after their answers end before the network service closes (nothing half-made).
      await compute.settle();
      await vm.close();
      await network.close();
      await rm(join(o.runDir, 'silo.pid'), { force: true });
    },
  };
}

/** `silo daemon`: runs until SIGINT or SIGTERM, then stops serving; the containers go on. */
export async function runDaemon(o: DaemonOptions): Promise<void> {
  if (process.env.SILO_DEBUG_MEMORY === '1') (await import('./memprobe.js')).installMemoryProbe(o.runDir);
  let d: Daemon;
  try {
    d = await startDaemon(o);
  } catch (e) {
    process.stderr.write(`silo daemon: ${oneLine(e)}\n`);
    process.exit(1);
  }
  releaseStartPages(d.services.log, 'start');
  const stop = () => {
    d.close().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function refuseSecondDaemon(socketPath: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) {
    const pid = await readFile(socketPath.replace(/silo\.sock$/, 'silo.pid'), 'utf8').catch(() => '?');
    throw new SiloError('Conflict', 'SILO_DAEMON_RUNNING', `another silo daemon is serving ${socketPath} (pid ${pid.trim()})`);
  }
}

async function toolVersions(): Promise<Record<string, string>> {
  const first = async (f: string) => (await run(f, ['--version'], { allowFail: true }).catch(() => ({ stdout: '' }))).stdout.split('\n')[0].trim();
  const [runc, conmon] = await Promise.all([first('runc'), first('conmon')]);
  return { Runc: runc, Conmon: conmon };
}
