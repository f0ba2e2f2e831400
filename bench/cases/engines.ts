// The engines side by side, each behind the same small interface: run `busybox true` once and remove it (timed end to
// end, client process included), and for the CLI engines `run <args>` / `rm -f`. An engine that cannot run says why
// once, at the probe, and its rows read "n/a (reason)".

import { performance } from 'node:perf_hooks';
import type { Dockerd } from '../env/dockerd.js';
import { DOCKER_CLI } from '../env/dockerd.js';
import type { Podman } from '../env/podman.js';
import type { Silo } from '../env/silo.js';
import { runTrue, type NativeClient, type Phases } from '../lib/native.js';
import { errText, exec, type ExecOpts, type Out } from '../lib/proc.js';

export interface Engine {
  key: string;
  label: string;
  /** Set when the engine cannot take part: the reason. */
  na?: string;
  /** One `run --rm busybox true`, ms. */
  runTrue(): Promise<number>;
  /** `<engine> run <args>` (CLI engines only). */
  run?(args: string[], o?: ExecOpts): Promise<Out>;
  rmForce?(ids: string[]): Promise<unknown>;
  /** Phase timings of the last runTrue (native API engines). */
  lastPhases?: Phases;
}

function cli(key: string, label: string, cmd: string, pre: string[], runFlags: string[], env?: NodeJS.ProcessEnv): Engine {
  const run = (args: string[], o: ExecOpts = {}) => exec(cmd, [...pre, 'run', ...runFlags, ...args], { env, ...o });
  return {
    key,
    label,
    run,
    runTrue: async () => (await run(['--rm', 'busybox', 'true'], { timeoutMs: 60_000 })).ms,
    rmForce: (ids) => exec(cmd, [...pre, 'rm', '-f', ...ids], { env, timeoutMs: 120_000 }),
  };
}

export interface EngineSet {
  siloCli: Engine;
  dockerSilo: Engine;
  docker: Engine;
  podman: Engine;
  runc: Engine;
  native: Engine;
  nativeNoNet: Engine;
  siloVersion: Engine;
}

export function engines(o: { silo: Silo; docker?: Dockerd; podman?: Podman; bundle?: string; runcRoot: string; tag: string; native: NativeClient }): EngineSet {
  const { silo, podman, native } = o;
  const siloCli = cli('silo', 'silo CLI', process.execPath, [silo.bin], [], silo.env);
  const dockerSilo = cli('docker-silo', 'docker CLI → Silo', DOCKER_CLI, ['-H', `unix://${silo.dockerSocket}`], []);
  const docker = cli('docker', 'docker CLI → dockerd', DOCKER_CLI, ['-H', `unix://${o.docker?.socket}`], []);
  if (!o.docker) docker.na = 'dockerd did not start';
  const pod = podman ? cli('podman', 'podman', 'podman', podman.global, podman.runFlags, podman.env) : cli('podman', 'podman', 'podman', [], []);
  if (!podman) pod.na = 'podman could not be set up';
  let n = 0;
  const runc: Engine = {
    key: 'runc',
    label: 'bare runc',
    // `runc run` = create + start + wait + delete of the container; no image, no network, no monitor.
    runTrue: async () => (await exec('runc', ['--root', o.runcRoot, 'run', '--bundle', o.bundle!, `${o.tag}-runc-${n++}`], { timeoutMs: 60_000 })).ms,
  };
  if (!o.bundle) runc.na = 'no bundle';
  const nativeEngine = (key: string, label: string, network?: string): Engine => {
    const e: Engine = {
      key,
      label,
      runTrue: async () => {
        const t = performance.now();
        e.lastPhases = await runTrue(native, network);
        return performance.now() - t;
      },
    };
    return e;
  };
  const siloVersion: Engine = {
    key: 'silo-version',
    label: 'silo --version (CLI process start only)',
    runTrue: async () => (await exec(process.execPath, [silo.bin, '--version'])).ms,
  };
  return {
    siloCli, dockerSilo, docker, podman: pod, runc,
    native: nativeEngine('silo-native', 'Silo native API'),
    nativeNoNet: nativeEngine('silo-native-nonet', 'Silo native API, network none'),
    siloVersion,
  };
}

/** One unmeasured run per engine: warms caches and finds out which engines work at all. */
export async function probe(list: Engine[], log: (m: string) => void): Promise<void> {
  for (const e of list) {
    if (e.na) continue;
    try {
      await e.runTrue();
      await e.runTrue();
    } catch (err) {
      e.na = errText(err);
      log(`${e.label}: n/a (${e.na})`);
    }
  }
}
