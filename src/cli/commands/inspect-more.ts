// `silo diff`, `silo history`, `silo update` and `silo port`: a container's changes, an image's history, a container's
// limits changed live, its published ports, as docker prints and takes them.

import { call, enc } from '../client.js';
import { CliError, eachTarget } from '../errors.js';
import { parseInteger, parseSize } from '../flags.js';
import { ago, humanSize, shortId, table } from '../format.js';
import type { ComputeSystemRecord } from '../../compute/types.js';
import type { Image, Layer } from '../../storage/types.js';

const KIND = ['C', 'A', 'D'];

export async function diff(ref: string): Promise<number> {
  const changes = await call<{ Path: string; Kind: 0 | 1 | 2 }[]>('GET', `/v1/systems/${enc(ref)}/changes`);
  process.stdout.write(changes.map((c) => `${KIND[c.Kind]} ${c.Path}\n`).join(''));
  return 0;
}

/**
 * `silo port CTR [PORT[/PROTO]]`: `80/tcp -> 0.0.0.0:8080` per mapping, or only the host addresses of one port; a
 * container that is not running publishes none (as dockerd answers), and a port it does not publish is an error.
 */
export async function port(ref: string, which?: string): Promise<number> {
  const r = await call<ComputeSystemRecord>('GET', `/v1/systems/${enc(ref)}`);
  const running = r.State === 'Running' || r.State === 'Paused';
  const maps = running ? [...(r.Document.Container.Networking?.PortMappings ?? [])] : [];
  maps.sort((a, b) => a.InternalPort - b.InternalPort || a.Protocol.localeCompare(b.Protocol) || (a.HostIp ?? '').localeCompare(b.HostIp ?? ''));
  const host = (m: (typeof maps)[number]) => (m.HostIp?.includes(':') ? `[${m.HostIp}]:${m.ExternalPort}` : `${m.HostIp ?? '0.0.0.0'}:${m.ExternalPort}`);
  if (which === undefined) {
    process.stdout.write(maps.map((m) => `${m.InternalPort}/${m.Protocol} -> ${host(m)}\n`).join(''));
    return 0;
  }
  const w = /^(\d+)(?:\/(tcp|udp))?$/.exec(which);
  if (!w) throw new CliError(`invalid port ${JSON.stringify(which)}: PORT or PORT/PROTO (tcp, udp)`);
  const proto = w[2] ?? 'tcp';
  const hits = maps.filter((m) => m.InternalPort === Number(w[1]) && m.Protocol === proto);
  if (hits.length === 0) throw new CliError(`No public port '${w[1]}/${proto}' published for ${ref}`, 1);
  process.stdout.write(hits.map((m) => `${host(m)}\n`).join(''));
  return 0;
}

/** Newest first; the image's id on its top entry, `<missing>` below, as docker prints an image built elsewhere. */
export async function history(ref: string, o: { quiet?: boolean; noTrunc?: boolean; format?: string }): Promise<number> {
  if (o.format !== undefined && o.format !== 'json') throw new CliError(`unsupported --format ${o.format}: only json`);
  const img = await call<Image>('GET', `/v1/images/${enc(ref)}`);
  const sizes = new Map((await call<Layer[]>('GET', '/v1/layers')).map((l) => [l.diffId, l.size]));
  // Each entry that is not an empty layer owns the next of the image's layers, bottom first.
  let layer = 0;
  const rows = img.history.map((h) => ({ h, size: h.empty_layer ? 0 : (sizes.get(img.layers[layer++]) ?? 0) })).reverse();
  if (o.format === 'json') {
    process.stdout.write(JSON.stringify(rows.map(({ h, size }, i) => ({ Id: i === 0 ? img.id : '<missing>', Created: h.created, CreatedBy: h.created_by ?? '', Size: size, Comment: h.comment ?? '' }))) + '\n');
    return 0;
  }
  if (o.quiet) {
    process.stdout.write(rows.map((_, i) => `${i === 0 ? (o.noTrunc ? img.id : shortId(img.id)) : '<missing>'}\n`).join(''));
    return 0;
  }
  const now = Date.now();
  const by = (s: string) => (o.noTrunc || s.length <= 45 ? s : `${s.slice(0, 44)}…`);
  process.stdout.write(
    table(
      ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
      rows.map(({ h, size }, i) => [i === 0 ? (o.noTrunc ? img.id : shortId(img.id)) : '<missing>', h.created ? ago(h.created, now) : '', by(h.created_by ?? ''), humanSize(size), h.comment ?? '']),
    ) + '\n',
  );
  return 0;
}

interface UpdateFlags {
  memory?: string;
  memoryReservation?: string;
  cpus?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  pidsLimit?: string;
  restart?: string;
}

/** docker's restart policy flag: no, always, unless-stopped, on-failure[:N]. */
export function parseRestart(s: string): { Name: string; MaximumRetryCount: number } {
  const [name, n] = s.split(':');
  if (!['no', 'always', 'unless-stopped', 'on-failure'].includes(name) || (n !== undefined && name !== 'on-failure')) throw new CliError(`invalid restart policy "${s}": no, always, unless-stopped or on-failure[:N]`);
  return { Name: name, MaximumRetryCount: n === undefined ? 0 : parseInteger(n, '--restart', 0) };
}

export async function update(refs: string[], f: UpdateFlags): Promise<number> {
  const memory = {
    ...(f.memory !== undefined ? { SizeInMB: parseSize(f.memory, '--memory') / 1048576 } : {}),
    ...(f.memoryReservation !== undefined ? { ReservationInBytes: parseSize(f.memoryReservation, '--memory-reservation') } : {}),
  };
  const cpus = f.cpus !== undefined ? Number(f.cpus) : undefined;
  if (cpus !== undefined && !(cpus > 0)) throw new CliError(`invalid --cpus: ${f.cpus}`);
  const shares = f.cpuShares !== undefined ? parseInteger(f.cpuShares, '--cpu-shares', 2) : undefined;
  const pids = f.pidsLimit !== undefined ? parseInteger(f.pidsLimit, '--pids-limit', 1) : undefined;
  const restart = f.restart !== undefined ? parseRestart(f.restart) : undefined;
  if (!Object.keys(memory).length && cpus === undefined && shares === undefined && f.cpusetCpus === undefined && pids === undefined && !restart) {
    throw new CliError('you must provide one or more flags when using this command');
  }
  return eachTarget(refs, async (ref) => {
    const modify = (ResourcePath: string, Settings: unknown) => call('POST', `/v1/systems/${enc(ref)}/modify`, { ResourcePath, Settings });
    if (Object.keys(memory).length) await modify('Container/Memory', memory);
    if (cpus !== undefined || shares !== undefined || f.cpusetCpus !== undefined) {
      const cur = (await call<ComputeSystemRecord>('GET', `/v1/systems/${enc(ref)}`)).Document.Container.Processor ?? {};
      // A CPU count replaces a maximum or weight the create set (they exclude each other); shares sit beside it.
      const { Maximum: _m, Weight: _w, ...keep } = cur;
      const next = { ...(cpus !== undefined ? keep : cur), ...(cpus !== undefined ? { Count: cpus } : {}), ...(shares !== undefined ? { Shares: shares } : {}), ...(f.cpusetCpus !== undefined ? { CpusetCpus: f.cpusetCpus } : {}) };
      await modify('Container/Processor', next);
    }
    if (pids !== undefined) await modify('Container/Pids', { Limit: pids });
    if (restart) await modify('RestartPolicy', restart);
    process.stdout.write(`${ref}\n`);
  });
}
