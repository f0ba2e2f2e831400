// `silo ps [-a] [-q] [-f KEY=VALUE]... [-n N | -l] [--no-trunc] [--format json|TEMPLATE]`

import type { System as ComputeSystemRecord } from '../../api/native/wire.js';
import { call } from '../client.js';
import { CliError } from '../errors.js';
import { lookups, matcher, parseFilters } from './ps-filter.js';
import { ago, displayName, ellipsis, formatPorts, outputFormat, renderTemplate, shortId, statusOf, table } from '../format.js';

const STATE: Record<string, string> = { Created: 'created', Running: 'running', Paused: 'paused', Stopped: 'exited' };

export async function ps(f: { all?: boolean; quiet?: boolean; trunc?: boolean; format?: string; filter?: string[]; last?: string; latest?: boolean }): Promise<number> {
  const filters = parseFilters(f.filter ?? []);
  const last = f.latest ? 1 : f.last === undefined ? undefined : Number(f.last);
  if (last !== undefined && !(Number.isInteger(last) && last >= 0)) throw new CliError(`invalid --last ${f.last}: a number of containers`);
  // As docker ps: a status or exited filter, and --last or --latest, look at containers in every state.
  const all = f.all || filters.has('status') || filters.has('exited') || last !== undefined;
  // before= and since= may name a stopped container even when only running ones are listed.
  const records = await call<ComputeSystemRecord[]>('GET', all || filters.has('before') || filters.has('since') ? '/v1/systems?all=1' : '/v1/systems');
  const keep = matcher(filters, records, await lookups(filters));
  let list = records.filter((r) => (all || r.State === 'Running' || r.State === 'Paused') && keep(r));
  list.sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
  if (last !== undefined && last > 0) list = list.slice(0, last);
  const full = f.trunc === false;
  const id = (r: ComputeSystemRecord) => (full ? r.Id : shortId(r.Id));
  if (f.quiet) {
    if (list.length) process.stdout.write(`${list.map(id).join('\n')}\n`);
    return 0;
  }
  const now = Date.now();
  const rows = list.map((r) => {
    const cmd = (r.Init?.Args ?? []).join(' ');
    return {
      ID: id(r),
      Image: displayName(r.ImageName ?? ''),
      Command: JSON.stringify(full ? cmd : ellipsis(cmd, 20)),
      CreatedAt: r.Created,
      RunningFor: ago(r.Created, now),
      Status: statusOf(r, now),
      State: STATE[r.State] ?? r.State.toLowerCase(),
      // like docker, published ports show while the container runs (they are bound only then)
      Ports: r.State === 'Running' || r.State === 'Paused' ? formatPorts(r.Document?.Container?.Networking?.PortMappings) : '',
      Names: r.Name,
      Labels: Object.entries(r.Document?.Labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    };
  });
  const fmt = outputFormat(f.format);
  if (fmt.kind === 'json') {
    for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
  } else if (fmt.kind === 'template') {
    for (const r of rows) process.stdout.write(`${renderTemplate(fmt.tpl, r)}\n`);
  } else {
    const t = table(
      ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
      rows.map((r) => [r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names]),
    );
    process.stdout.write(`${t}\n`);
  }
  return 0;
}
