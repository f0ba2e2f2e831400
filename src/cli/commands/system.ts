// `silo info` and `silo version`.

import { call, hostUrl } from '../client.js';
import { CLI_VERSION, describe } from '../errors.js';
import { bytesSize, outputFormat, renderTemplate } from '../format.js';

type Obj = Record<string, unknown>;

const LABELS: Record<string, string> = {
  Version: 'Version',
  ApiVersion: 'API version',
  Os: 'OS',
  Arch: 'Arch',
  Runc: 'Runc',
  Conmon: 'Conmon',
  Kernel: 'Kernel version',
  KernelVersion: 'Kernel Version',
  StateDir: 'State Dir',
  RunDir: 'Run Dir',
  CgroupParent: 'Cgroup Parent',
  CgroupVersion: 'Cgroup Version',
  DefaultIsolation: 'Default Isolation',
  MemTotal: 'Total Memory',
};

/** ` Label: value` lines of an object's scalar and list fields; `align` pads the labels as `docker version` does. */
function lines(o: Obj, indent: string, align: boolean, skip: string[] = []): string {
  const keys = Object.keys(o).filter((k) => !skip.includes(k) && (o[k] === null || typeof o[k] !== 'object' || Array.isArray(o[k])));
  const w = align ? Math.max(0, ...keys.map((k) => (LABELS[k] ?? k).length + 1)) : 0;
  return keys
    .map((k) => {
      const v = o[k];
      const text = Array.isArray(v) ? v.join(', ') : k === 'MemTotal' && typeof v === 'number' ? bytesSize(v) : String(v);
      return `${indent}${`${LABELS[k] ?? k}:`.padEnd(w)} ${text}`;
    })
    .join('\n');
}

function emit(obj: unknown, format: string | undefined): boolean {
  const fmt = outputFormat(format);
  if (fmt.kind === 'json') process.stdout.write(`${JSON.stringify(obj)}\n`);
  else if (fmt.kind === 'template') process.stdout.write(`${renderTemplate(fmt.tpl, obj)}\n`);
  return fmt.kind !== 'table';
}

export async function info(f: { format?: string }): Promise<number> {
  const [i, v] = await Promise.all([call<Obj>('GET', '/v1/info'), call<Obj>('GET', '/v1/version').catch(() => ({}) as Obj)]);
  if (emit(i, f.format)) return 0;
  const n = (k: string) => String(i[k] ?? 0);
  const out = [
    'Client:',
    ` Version: ${CLI_VERSION}`,
    ` Host: ${hostUrl()}`,
    '',
    'Server:',
    ` Containers: ${n('Systems')}`,
    `  Running: ${n('Running')}`,
    `  Paused: ${n('Paused')}`,
    `  Stopped: ${n('Stopped')}`,
    ` Images: ${n('Images')}`,
    ` Server Version: ${String(v.Version ?? '')}`,
    lines(i, ' ', false, ['Systems', 'Running', 'Paused', 'Stopped', 'Images']),
  ];
  process.stdout.write(`${out.filter((l) => l !== '').join('\n').replace('\nServer:', '\n\nServer:')}\n`);
  return 0;
}

export async function version(f: { format?: string }): Promise<number> {
  const client = { Version: CLI_VERSION, Node: process.version, Os: process.platform, Arch: process.arch };
  let server: Obj | undefined;
  let err: unknown;
  try {
    server = await call<Obj>('GET', '/v1/version');
  } catch (e) {
    err = e;
  }
  if (!emit({ Client: client, Server: server ?? null }, f.format)) {
    process.stdout.write(
      `Client:\n Version:      ${client.Version}\n Node version: ${client.Node}\n OS/Arch:      ${client.Os}/${client.Arch}\n`,
    );
    if (server) process.stdout.write(`\nServer:\n${lines(server, ' ', true)}\n`);
  }
  if (err) {
    const d = describe(err);
    process.stderr.write(`${d.line}\n`);
    return d.code;
  }
  return 0;
}
