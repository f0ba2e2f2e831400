// `silo system df [-v] [--format json|TEMPLATE]`: what images, containers and volumes take on disk, summed as
// `docker system df` sums them (RECLAIMABLE: what removing the unused ones would give back).

import type { DiskUsage } from '../../api/native/wire.js';
import { call } from '../client.js';
import { ago, humanSize, outputFormat, renderTemplate, shortId, splitRepoTag, table } from '../format.js';

export interface DfRow {
  Type: string;
  TotalCount: string;
  Active: string;
  Size: string;
  Reclaimable: string;
}

const share = (part: number, whole: number) => (whole > 0 ? `${humanSize(part)} (${Math.floor((part * 100) / whole)}%)` : humanSize(part));

/** The summary rows, as docker's CLI computes them from the same figures. */
export function dfRows(u: DiskUsage): DfRow[] {
  const activeImages = u.Images.filter((i) => i.Containers > 0);
  const usedByActive = activeImages.reduce((a, i) => a + i.Size - i.SharedSize, 0);
  const running = (s: string) => s === 'Running' || s === 'Paused';
  const ctrSize = u.Containers.reduce((a, c) => a + c.SizeRw, 0);
  const ctrIdle = u.Containers.filter((c) => !running(c.State)).reduce((a, c) => a + c.SizeRw, 0);
  const volSize = u.Volumes.reduce((a, v) => a + v.Size, 0);
  const volIdle = u.Volumes.filter((v) => v.RefCount === 0).reduce((a, v) => a + v.Size, 0);
  return [
    { Type: 'Images', TotalCount: String(u.Images.length), Active: String(activeImages.length), Size: humanSize(u.LayersSize), Reclaimable: share(Math.max(0, u.LayersSize - usedByActive), u.LayersSize) },
    { Type: 'Containers', TotalCount: String(u.Containers.length), Active: String(u.Containers.filter((c) => running(c.State)).length), Size: humanSize(ctrSize), Reclaimable: share(ctrIdle, ctrSize) },
    { Type: 'Local Volumes', TotalCount: String(u.Volumes.length), Active: String(u.Volumes.filter((v) => v.RefCount > 0).length), Size: humanSize(volSize), Reclaimable: share(volIdle, volSize) },
  ];
}

export async function df(f: { verbose?: boolean; format?: string }): Promise<number> {
  const u = await call<DiskUsage>('GET', '/v1/system/df');
  const fmt = outputFormat(f.format);
  if (fmt.kind === 'json') {
    process.stdout.write(JSON.stringify(u) + '\n');
    return 0;
  }
  const rows = dfRows(u);
  if (fmt.kind === 'template') {
    for (const r of rows) process.stdout.write(renderTemplate(fmt.tpl, r) + '\n');
    return 0;
  }
  if (!f.verbose) {
    process.stdout.write(table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], rows.map((r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable])) + '\n');
    return 0;
  }
  const now = Date.now();
  const images = u.Images.flatMap((i) => (i.Names.length ? i.Names.filter((n) => !n.includes('@')) : ['<none>:<none>']).map((n) => ({ i, n })));
  process.stdout.write('Images space usage:\n\n');
  process.stdout.write(
    table(
      ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'],
      images.map(({ i, n }) => [...(n === '<none>:<none>' ? ['<none>', '<none>'] : splitRepoTag(n)), shortId(i.Id), ago(i.Created, now), humanSize(i.Size), humanSize(i.SharedSize), humanSize(i.Size - i.SharedSize), String(i.Containers)]),
    ) + '\n\n',
  );
  process.stdout.write('Containers space usage:\n\n');
  process.stdout.write(table(['CONTAINER ID', 'IMAGE', 'SIZE', 'STATE', 'NAMES'], u.Containers.map((c) => [shortId(c.Id), c.Image, humanSize(c.SizeRw), c.State.toLowerCase(), c.Name])) + '\n\n');
  process.stdout.write('Local Volumes space usage:\n\n');
  process.stdout.write(table(['VOLUME NAME', 'LINKS', 'SIZE'], u.Volumes.map((v) => [v.Name, String(v.RefCount), humanSize(v.Size)])) + '\n');
  return 0;
}
