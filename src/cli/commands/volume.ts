// `silo volume create|ls|inspect|rm|prune`: the daemon's named volumes (the Docker door's too), as docker's verbs.

import { call, enc, withQuery } from '../client.js';
import { eachTarget } from '../errors.js';
import { humanSize, inspectTargets, printRows } from '../format.js';
import { parseLabels } from '../flags.js';

interface VolumeInfo {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Containers: number;
}

export async function create(name: string | undefined, o: { label?: string[] }): Promise<number> {
  const v = await call<VolumeInfo>('POST', '/v1/volumes', { ...(name ? { Name: name } : {}), Labels: parseLabels(o.label ?? []) });
  process.stdout.write(`${v.Name}\n`);
  return 0;
}

export async function ls(o: { quiet?: boolean; format?: string; filter?: string[] }): Promise<number> {
  let all = await call<VolumeInfo[]>('GET', '/v1/volumes');
  for (const f of o.filter ?? []) {
    const [k, v = ''] = f.split(/=(.*)/s);
    if (k === 'name') all = all.filter((x) => x.Name.includes(v));
    else if (k === 'dangling') all = all.filter((x) => (x.Containers === 0) === /^(true|1)$/.test(v));
    else if (k === 'label') all = all.filter((x) => (v.includes('=') ? x.Labels[v.split('=')[0]] === v.slice(v.indexOf('=') + 1) : v in x.Labels));
    else throw new Error(`invalid filter '${f}' (name, dangling or label)`);
  }
  const rows = all.map((v) => ({ ID: v.Name, ...v }));
  printRows(rows, o, ['DRIVER', 'VOLUME NAME'], (v) => [v.Driver, v.Name]);
  return 0;
}

export function inspect(names: string[], o: { format?: string }): Promise<number> {
  return inspectTargets(names, (n) => call('GET', `/v1/volumes/${enc(n)}`), o.format);
}

export function rm(names: string[], o: { force?: boolean }): Promise<number> {
  return eachTarget(names, async (n) => {
    // -f: a volume that is not there is no error (docker's); one in use is still refused.
    const r = await call('DELETE', `/v1/volumes/${enc(n)}`).then(() => true, (e: { status?: number }) => (o.force && e.status === 404 ? false : Promise.reject(e)));
    if (r || o.force) process.stdout.write(`${n}\n`);
  });
}

export async function prune(o: { all?: boolean; force?: boolean }): Promise<number> {
  const what = o.all ? 'all volumes not used by at least one container' : 'all anonymous volumes not used by at least one container';
  if (!o.force && !(await (await import('./prune.js')).confirm(`WARNING! This will remove ${what}.`))) return 0;
  const r = await call<{ Deleted: string[]; SpaceReclaimed: number }>('POST', withQuery('/v1/volumes/prune', { all: o.all }));
  if (r.Deleted.length) process.stdout.write(`Deleted Volumes:\n${r.Deleted.join('\n')}\n\n`);
  process.stdout.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
  return 0;
}
