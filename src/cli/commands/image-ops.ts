// import, commit, rmi, tag.

import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Image } from '../../api/native/wire.js';
import { call, enc, withQuery } from '../client.js';
import { CliError, eachTarget } from '../errors.js';
import { displayName } from '../format.js';

export async function importImage(file: string, name: string | undefined, f: { change?: string[]; message?: string }): Promise<number> {
  if (/^https?:\/\//.test(file)) throw new CliError('importing from a URL is not supported; download the file and import it');
  let body: Readable;
  const headers: Record<string, string | number> = { 'Content-Type': 'application/x-tar' };
  if (file === '-') body = process.stdin;
  else {
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new CliError(`${file} is not a file`);
      size = st.size;
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`open ${file}: no such file or directory`);
    }
    headers['Content-Length'] = size;
    body = createReadStream(file);
  }
  const img = await call<Image>('POST', withQuery('/v1/images/import', { name, change: f.change, comment: f.message }), undefined, { body, headers });
  process.stdout.write(`${img.id}\n`);
  return 0;
}

export async function commit(ref: string, name: string | undefined, f: { change?: string[]; message?: string; author?: string }): Promise<number> {
  const body: { Name?: string; Comment?: string; Author?: string; Changes?: string[] } = {};
  if (name !== undefined) body.Name = name;
  if (f.message !== undefined) body.Comment = f.message;
  if (f.author !== undefined) body.Author = f.author;
  if (f.change?.length) body.Changes = f.change;
  const r = await call<{ Id: string }>('POST', `/v1/systems/${enc(ref)}/commit`, body);
  process.stdout.write(`${r.Id}\n`);
  return 0;
}

export function rmi(refs: string[], f: { force?: boolean }): Promise<number> {
  return eachTarget(refs, async (ref) => {
    const r = await call<{ Untagged?: string[]; Deleted?: string[] }>('DELETE', withQuery(`/v1/images/${enc(ref)}`, { force: f.force }));
    for (const u of r?.Untagged ?? []) process.stdout.write(`Untagged: ${displayName(u)}\n`);
    for (const d of r?.Deleted ?? []) process.stdout.write(`Deleted: ${d}\n`);
  });
}

export async function tag(source: string, target: string): Promise<number> {
  await call('POST', `/v1/images/${enc(source)}/tag`, { Name: target });
  return 0;
}
