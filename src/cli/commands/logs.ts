// `silo logs [-f] [--tail N|all] [-t] [--since T] CONTAINER`

import { enc, stream, withQuery } from '../client.js';
import { CliError } from '../errors.js';
import { pumpOutput } from '../stream.js';

/** Docker's --since: RFC3339 (or a date), a unix timestamp, or a duration back from now ("10m", "1h30m", "45s"). */
export function parseSince(s: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(s)) return new Date(Number(s) * 1000).toISOString();
  const dur = /^((\d+(\.\d+)?)(ms|s|m|h))+$/.test(s);
  if (dur) {
    const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    let ms = 0;
    for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]];
    return new Date(now - ms).toISOString();
  }
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new CliError(`invalid value for "since": ${s}`);
  return /T.*[-+Z]/.test(s) ? s : new Date(t).toISOString();
}

export async function logs(ref: string, f: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string }): Promise<number> {
  let tail: number | undefined;
  if (f.tail !== undefined && f.tail !== 'all') {
    if (!/^\d+$/.test(f.tail)) throw new CliError(`invalid value for "tail": ${f.tail}`);
    tail = Number(f.tail);
  }
  const res = await stream(
    'GET',
    withQuery(`/v1/systems/${enc(ref)}/logs`, {
      follow: f.follow,
      tail,
      timestamps: f.timestamps,
      since: f.since === undefined ? undefined : parseSince(f.since),
    }),
  );
  await pumpOutput(res, false);
  return 0;
}
