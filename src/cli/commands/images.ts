// `silo images [-a] [-q] [--no-trunc] [--format json|TEMPLATE] [REPOSITORY[:TAG]]`

import type { Image } from '../../api/native/wire.js';
import { call } from '../client.js';
import { ago, humanSize, outputFormat, renderTemplate, shortId, splitRepoTag, table } from '../format.js';

export async function images(ref: string | undefined, f: { quiet?: boolean; trunc?: boolean; format?: string }): Promise<number> {
  const list = await call<Image[]>('GET', '/v1/images');
  list.sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
  const full = f.trunc === false;
  const now = Date.now();
  let rows = list.flatMap((img) =>
    (img.names.length ? img.names.map(splitRepoTag) : [['<none>', '<none>']]).map(([repo, tag]) => ({
      ID: full ? img.id : shortId(img.id),
      Repository: repo,
      Tag: tag,
      CreatedAt: img.created,
      CreatedSince: ago(img.created, now),
      Size: humanSize(img.size),
      VirtualSize: humanSize(img.size),
    })),
  );
  if (ref) {
    // A tag is a colon in the last path component: "host:5000/repo" names a repository (every tag), not a tag.
    const tagged = ref.lastIndexOf(':') > ref.lastIndexOf('/');
    const [repo, tag] = tagged ? splitRepoTag(ref) : [splitRepoTag(ref)[0], undefined];
    rows = rows.filter((r) => r.Repository === repo && (tag === undefined || r.Tag === tag));
  }
  if (f.quiet) {
    const ids = [...new Set(rows.map((r) => r.ID))];
    if (ids.length) process.stdout.write(`${ids.join('\n')}\n`);
    return 0;
  }
  const fmt = outputFormat(f.format);
  if (fmt.kind === 'json') for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
  else if (fmt.kind === 'template') for (const r of rows) process.stdout.write(`${renderTemplate(fmt.tpl, r)}\n`);
  else
    process.stdout.write(
      `${table(
        ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
        rows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size]),
      )}\n`,
    );
  return 0;
}
