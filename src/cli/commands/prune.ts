// `silo image prune [-a] [-f]` and `silo system prune [-a] [-f]`, as docker's: without -f they ask first, and an
// answer other than y (or no terminal to answer from) leaves everything as it was.

import { createInterface } from 'node:readline';
import type { System as ComputeSystemRecord } from '../../api/native/wire.js';
import { call, enc, withQuery } from '../client.js';
import { displayName, humanSize } from '../format.js';

interface PruneAnswer {
  Deleted: string[];
  Untagged: string[];
  SpaceReclaimed: number;
}

export async function confirm(warning: string): Promise<boolean> {
  process.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const rl = createInterface({ input: process.stdin });
  const line = await new Promise<string>((resolve) => {
    rl.once('line', resolve);
    rl.once('close', () => resolve(''));
  });
  rl.close();
  return /^y(es)?$/i.test(line.trim());
}

function printImages(r: PruneAnswer): void {
  if (r.Deleted.length || r.Untagged.length) {
    process.stdout.write('Deleted Images:\n');
    for (const u of r.Untagged) process.stdout.write(`untagged: ${displayName(u)}\n`);
    for (const d of r.Deleted) process.stdout.write(`deleted: ${d}\n`);
    process.stdout.write('\n');
  }
}

export async function imagePrune(f: { all?: boolean; force?: boolean }): Promise<number> {
  const what = f.all ? 'all images without at least one container associated to them' : 'all dangling images';
  if (!f.force && !(await confirm(`WARNING! This will remove ${what}.`))) return 0;
  const r = await call<PruneAnswer>('POST', withQuery('/v1/images/prune', { all: f.all }));
  printImages(r);
  process.stdout.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
  return 0;
}

export async function systemPrune(f: { all?: boolean; force?: boolean }): Promise<number> {
  const images = f.all ? 'all images without at least one container associated to them' : 'all dangling images';
  if (!f.force && !(await confirm(`WARNING! This will remove:\n  - all stopped containers\n  - ${images}`))) return 0;
  const stopped = (await call<ComputeSystemRecord[]>('GET', '/v1/systems?all=1')).filter((s) => s.State === 'Stopped' || s.State === 'Created');
  const removed: string[] = [];
  for (const s of stopped) {
    // One that started or went away meanwhile is not ours to remove: skip it.
    await call('DELETE', `/v1/systems/${enc(s.Id)}`).then(() => removed.push(s.Id), () => {});
  }
  if (removed.length) process.stdout.write(`Deleted Containers:\n${removed.join('\n')}\n\n`);
  const r = await call<PruneAnswer>('POST', withQuery('/v1/images/prune', { all: f.all }));
  printImages(r);
  process.stdout.write(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
  return 0;
}
