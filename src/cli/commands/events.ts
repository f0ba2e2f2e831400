// `silo events`: the daemon's events as they happen (and those since --since), as docker prints them, until --until
// or an interrupt.

import { createInterface } from 'node:readline';
import { stream, withQuery } from '../client.js';
import { CliError } from '../errors.js';
import type { SiloEvent } from '../../common/events.js';

/** docker's time arguments: RFC 3339, a Unix time in seconds, or a duration ago (10m, 1h30m, 45s). */
export function parseTime(s: string, flag: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(s)) return new Date(Number(s) * 1000).toISOString();
  const d = /^((\d+)h)?((\d+)m)?((\d+)s)?$/.exec(s);
  if (d && s) return new Date(now - ((Number(d[2] ?? 0) * 60 + Number(d[4] ?? 0)) * 60 + Number(d[6] ?? 0)) * 1000).toISOString();
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new CliError(`invalid ${flag} "${s}": a time (RFC 3339), a Unix time or a duration such as 10m`);
  return new Date(t).toISOString();
}

/** `type=container|image|network|volume|daemon`, `event=<action>`, `container=<id prefix or name>`: each key any of its values. */
export function eventFilter(specs: string[]): (e: SiloEvent) => boolean {
  const want = new Map<string, string[]>();
  for (const s of specs) {
    const i = s.indexOf('=');
    const k = s.slice(0, i);
    if (i <= 0 || !['type', 'event', 'container'].includes(k)) throw new CliError(`invalid --filter "${s}": silo events takes type=, event= and container=`);
    want.set(k, [...(want.get(k) ?? []), s.slice(i + 1)]);
  }
  const type = (e: SiloEvent) => (e.Type === 'system' ? 'container' : e.Type);
  return (e) =>
    (!want.has('type') || want.get('type')!.includes(type(e))) &&
    (!want.has('event') || want.get('event')!.includes(e.Action)) &&
    (!want.has('container') || (e.Type === 'system' && want.get('container')!.some((c) => e.Id.startsWith(c) || e.Name === c)));
}

/** One line as docker prints it: time, type, action, id, (attributes sorted). */
export function eventLine(e: SiloEvent): string {
  const attrs = Object.entries(e.Attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`);
  return `${e.Time} ${e.Type === 'system' ? 'container' : e.Type} ${e.Action} ${e.Id}${attrs.length ? ` (${attrs.join(', ')})` : ''}`;
}

export async function events(o: { since?: string; until?: string; filter?: string[]; format?: string }): Promise<number> {
  if (o.format !== undefined && o.format !== 'json') throw new CliError(`unsupported --format ${o.format}: only json`);
  const keep = eventFilter(o.filter ?? []);
  const q = { since: o.since !== undefined ? parseTime(o.since, '--since') : undefined, until: o.until !== undefined ? parseTime(o.until, '--until') : undefined };
  const res = await stream('GET', withQuery('/v1/events', q));
  for await (const line of createInterface({ input: res })) {
    if (!line) continue;
    const e = JSON.parse(line) as SiloEvent;
    if (keep(e)) process.stdout.write(`${o.format === 'json' ? JSON.stringify(e) : eventLine(e)}\n`);
  }
  return 0;
}
