// Pure output helpers: tables, sizes, durations and statuses as docker prints them.

import type { System as ComputeSystemRecord } from '../api/native/wire.js';
import { describe } from './errors.js';

/** Docker's tabwriter (minwidth 10, padding 3); the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(10, ...all.map((r) => (r[i] ?? '').length + 3)));
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

function sized(n: number, base: number, units: string[], precision: number): string {
  let i = 0;
  let x = n;
  while (x >= base && i < units.length - 1) {
    x /= base;
    i++;
  }
  let s = Number(x.toPrecision(precision));
  if (s >= base && i < units.length - 1) {
    // 999.9 kB rounds to 1000: carry into the next unit.
    s = Number((x / base).toPrecision(precision));
    i++;
  }
  return `${s}${units[i]}`;
}

/** Decimal sizes as `docker images` shows them: "4.26MB", "0B", "1.23GB". */
export const humanSize = (bytes: number, precision = 3): string =>
  sized(Math.max(0, bytes), 1000, ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], precision);

/** Binary sizes as `docker stats` shows memory: "1.52MiB". */
export const bytesSize = (bytes: number): string =>
  sized(Math.max(0, bytes), 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], 4);

/** go-units HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

export const ago = (iso: string | undefined, now: number): string =>
  iso ? `${humanDuration(now - Date.parse(iso))} ago` : '';

/** The STATUS column of `ps`. */
export function statusOf(r: Pick<ComputeSystemRecord, 'State' | 'StartedAt' | 'FinishedAt' | 'ExitCode'>, now: number): string {
  switch (r.State) {
    case 'Created':
      return 'Created';
    case 'Running':
      return `Up ${humanDuration(now - Date.parse(r.StartedAt ?? new Date(now).toISOString()))}`;
    case 'Paused':
      return `Up ${humanDuration(now - Date.parse(r.StartedAt ?? new Date(now).toISOString()))} (Paused)`;
    case 'Stopped': {
      if (!r.StartedAt && !r.FinishedAt) return 'Created';
      const when = r.FinishedAt ? ` ${ago(r.FinishedAt, now)}` : '';
      return `Exited (${r.ExitCode ?? 0})${when}`;
    }
    default:
      return String(r.State);
  }
}

export const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

/** Docker's Ellipsis. */
export const ellipsis = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** "docker.io/library/busybox:latest" → "busybox:latest"; "docker.io/me/x:1" → "me/x:1". */
export const displayName = (name: string): string => name.replace(/^docker\.io\/(library\/)?/, '');

/** "busybox:latest" → ["busybox", "latest"]; a port in the registry is not a tag. */
export function splitRepoTag(name: string): [string, string] {
  const n = displayName(name).replace(/@.*$/, '');
  const i = n.lastIndexOf(':');
  if (i > n.lastIndexOf('/')) return [n.slice(0, i), n.slice(i + 1)];
  return [n, 'latest'];
}

/** CPU time as ps prints it: "0:00", "1:05:02". */
export function cpuTime(ns: number): string {
  const s = Math.floor(ns / 1e9);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export const percent = (x: number): string => `${(Number.isFinite(x) ? x : 0).toFixed(2)}%`;

function lookup(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const k of path.split('.').filter(Boolean)) v = v == null ? undefined : (v as Record<string, unknown>)[k];
  return v;
}

/**
 * A tiny subset of Go templates for --format: `{{.Field.Sub}}`, `{{json .Field}}`, `{{.}}`, `{{json .}}`;
 * `\t` and `\n` escapes in the format are honoured, as docker does.
 */
export function renderTemplate(tpl: string, obj: unknown): string {
  return tpl
    .replace(/\\t/g, '\t')
    .replace(/\\n/g, '\n')
    .replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_, json: string | undefined, path: string) => {
      const v = lookup(obj, path);
      if (json) return JSON.stringify(v ?? null);
      if (v === undefined || v === null) return '<no value>';
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
}

/** --format value → how to print: a table (default), JSON lines, or a template. */
export type OutputFormat = { kind: 'table' } | { kind: 'json' } | { kind: 'template'; tpl: string };

export function outputFormat(f: string | undefined): OutputFormat {
  if (!f || f === 'table') return { kind: 'table' };
  if (f === 'json' || f === '{{json .}}') return { kind: 'json' };
  if (f.startsWith('table ')) return { kind: 'template', tpl: f.slice(6) };
  return { kind: 'template', tpl: f };
}

type PortMap = { Protocol: string; InternalPort: number; ExternalPort: number; HostIp?: string };

/**
 * The PORTS column of `ps` as docker prints it: "0.0.0.0:8080->80/tcp, 127.0.0.1:9000->90/udp", sorted, runs of
 * consecutive host and container ports folded into ranges ("0.0.0.0:8000-8001->80-81/tcp").
 */
export function formatPorts(mappings: readonly PortMap[] | undefined): string {
  const list = [...(mappings ?? [])].sort(
    (a, b) =>
      (a.HostIp ?? '0.0.0.0').localeCompare(b.HostIp ?? '0.0.0.0') ||
      a.Protocol.localeCompare(b.Protocol) ||
      a.ExternalPort - b.ExternalPort ||
      a.InternalPort - b.InternalPort,
  );
  const out: string[] = [];
  for (let i = 0; i < list.length; ) {
    const first = list[i];
    const ip = first.HostIp ?? '0.0.0.0';
    let j = i;
    while (
      j + 1 < list.length &&
      (list[j + 1].HostIp ?? '0.0.0.0') === ip &&
      list[j + 1].Protocol === first.Protocol &&
      list[j + 1].ExternalPort === list[j].ExternalPort + 1 &&
      list[j + 1].InternalPort === list[j].InternalPort + 1
    )
      j++;
    const last = list[j];
    const range = (a: number, b: number) => (a === b ? `${a}` : `${a}-${b}`);
    out.push(`${ip}:${range(first.ExternalPort, last.ExternalPort)}->${range(first.InternalPort, last.InternalPort)}/${first.Protocol}`);
    i = j + 1;
  }
  return out.join(', ');
}

/** `inspect` of several objects as docker prints it: one JSON array of those found (or a template each), then errors. */
export async function inspectTargets(refs: string[], get: (ref: string) => Promise<unknown>, format?: string): Promise<number> {
  const found: unknown[] = [];
  const errors: string[] = [];
  let code = 0;
  for (const r of refs) {
    try {
      found.push(await get(r));
    } catch (e) {
      const d = describe(e);
      errors.push(d.line);
      code = d.code;
    }
  }
  if (format && format !== 'json') for (const o of found) process.stdout.write(renderTemplate(format, o) + '\n');
  else process.stdout.write(JSON.stringify(found, null, 4) + '\n');
  for (const e of errors) process.stderr.write(`${e}\n`);
  return code;
}

/** An `ls` verb's output: ids with -q, one JSON array, a template per row, or the table. */
export function printRows<R extends { ID: string }>(rows: R[], f: { quiet?: boolean; format?: string }, headers: string[], cells: (r: R) => string[]): void {
  const out = (t: string) => process.stdout.write(`${t}\n`);
  if (f.quiet) {
    if (rows.length) out(rows.map((r) => r.ID).join('\n'));
    return;
  }
  const fmt = outputFormat(f.format);
  if (fmt.kind === 'json') out(JSON.stringify(rows)); // one JSON array (scripts parse it whole)
  else if (fmt.kind === 'template') for (const r of rows) out(renderTemplate(fmt.tpl, r));
  else out(table(headers, rows.map(cells)));
}
