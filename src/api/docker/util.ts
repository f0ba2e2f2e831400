// Small helpers shared by the Docker routes: query booleans, filters, JSON replies with docker's content type.

import type { FastifyReply } from 'fastify';
import { dockerInvalid } from './errors.js';

export type Query = Record<string, string | string[] | undefined>;

/** The CLI sends booleans as 1; other clients send true/True. */
export const flag = (v: unknown): boolean => {
  const s = String(Array.isArray(v) ? v[v.length - 1] : v).toLowerCase();
  return s === '1' || s === 'true';
};

export const first = (v: unknown): string | undefined => (v === undefined ? undefined : Array.isArray(v) ? String(v[0]) : String(v));
export const all = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

export function int(v: unknown, name: string): number | undefined {
  const s = first(v);
  if (s === undefined || s === '') return undefined;
  const n = Number(s);
  if (!Number.isInteger(n)) throw dockerInvalid(`invalid ${name} parameter: ${s}`);
  return n;
}

/**
 * `filters={"status":{"exited":true}}` (or the legacy `{"status":["exited"]}`) → key → values. A key outside
 * `accepted` (the route's) is refused as dockerd refuses it: a filter dropped would list, or prune, more than asked.
 */
export function filters(q: Query, accepted: readonly string[]): Map<string, string[]> {
  const raw = first(q.filters);
  const out = new Map<string, string[]>();
  if (!raw) return out;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw dockerInvalid(`invalid filter: ${raw}`);
  }
  if (typeof v !== 'object' || v === null) throw dockerInvalid(`invalid filter: ${raw}`);
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!accepted.includes(k)) throw dockerInvalid(`invalid filter '${k}'`);
    if (Array.isArray(val)) out.set(k, val.map(String));
    else if (val && typeof val === 'object') out.set(k, Object.entries(val).filter(([, on]) => on).map(([x]) => x));
  }
  return out;
}

/** A boolean filter's value (`dangling=true`): true, false, or undefined when absent; anything else is refused. */
export function boolFilter(f: Map<string, string[]>, key: string): boolean | undefined {
  const v = f.get(key)?.[0];
  if (v === undefined) return undefined;
  if (!['true', '1', 'false', '0'].includes(v)) throw dockerInvalid(`invalid filter '${key}=${v}'`);
  return v === 'true' || v === '1';
}

/** `label=a` / `label=a=b` against a label map. */
export function labelMatch(labels: Record<string, string> | undefined, want: string[]): boolean {
  return want.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return labels?.[w] !== undefined;
    return labels?.[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

/**
 * The prune filters dockerd knows for every kind of object: `label` (all must match), `label!` (none may), `until`
 * (created before: unix seconds, an RFC3339 time or a duration ago); `view` gives an object's labels and creation.
 */
export function labelsAndUntil<T>(f: Map<string, string[]>, view: (o: T) => { labels?: Record<string, string>; created: string }, now = Date.now()): (o: T) => boolean {
  const until = (f.get('until') ?? []).map((v) => untilMs(v, now));
  const has = f.get('label');
  const not = f.get('label!');
  return (o) => {
    const v = view(o);
    return (!has || labelMatch(v.labels, has)) && (!not || !not.some((l) => labelMatch(v.labels, [l]))) && until.every((t) => Date.parse(v.created) < t);
  };
}

function untilMs(v: string, now: number): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const d = /^(\d+(?:\.\d+)?)(h|m|s|ms)$/.exec(v);
  if (d) return now - Number(d[1]) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1 }[d[2] as 'h' | 'm' | 's' | 'ms'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw dockerInvalid(`invalid value for until: ${v}`);
  return t;
}

export function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.status(status).header('Content-Type', 'application/json').send(JSON.stringify(body) + '\n');
}

/** Unix seconds of an ISO time (0 for none). */
export const unix = (iso: string | undefined): number => (iso ? Math.floor(Date.parse(iso) / 1000) : 0);

/** Docker's zero time for fields never set. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** docker/go-units HumanDuration: "Less than a second", "About a minute", "5 minutes"... */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** docker/go-units HumanSize (decimal, 3 significant digits): "1.23MB". */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** A JSON message stream reply (pull, import, load, build progress): one object a line, as the CLI reads them. */
export function jsonStream(reply: FastifyReply): (o: unknown) => void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  return (o) => res.write(JSON.stringify(o) + '\r\n');
}

/** Silo's default network ("nat") is docker's predefined "bridge"; every other network keeps its name. */
export const dockerNetworkName = (n: { Name: string }) => (n.Name === 'nat' ? 'bridge' : n.Name);
