// What the figures were measured on: the machine and every engine's version, read from the tools themselves.

import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { tryExec } from '../lib/proc.js';

export interface Machine {
  nproc: number;
  memTotalMB: number;
  kernel: string;
  cpuModel: string;
  os: string;
}

export function machine(): Machine {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  return {
    nproc: cpus().length,
    memTotalMB: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    os: /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown',
  };
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await tryExec(cmd, args);
  return r.code === 0 ? (r.stdout || r.stderr).trim().split('\n')[0] : 'n/a';
}

export async function versions(siloBin: string, dockerCli: string): Promise<Record<string, string>> {
  const [silo, runc, conmon, docker, dockerd, containerd, podman, wrk] = await Promise.all([
    firstLine(process.execPath, [siloBin, '--version']),
    firstLine('runc', ['--version']),
    firstLine('conmon', ['--version']),
    firstLine(dockerCli, ['--version']),
    firstLine('dockerd', ['--version']),
    firstLine('containerd', ['--version']),
    firstLine('podman', ['--version']),
    tryExec('wrk', ['-v']).then((r) => (r.stdout + r.stderr).trim().split('\n')[0] || 'n/a'),
  ]);
  return { silo, node: process.version, runc, conmon, dockerCli: docker, dockerd, containerd, podman, wrk };
}
