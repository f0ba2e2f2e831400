// `docker top CONTAINER [ps OPTIONS]`: without options, the container's processes as the compute service lists them;
// with options, as dockerd does it: the host's ps runs with them and only the container's processes' lines are kept,
// found by the PID column. The options are ps's own arguments (split on spaces, no shell).

import { run } from '../../common/exec.js';
import type { ProcessInfo } from '../../compute/backend.js';
import { dockerInvalid } from './errors.js';

export interface TopAnswer {
  Titles: string[];
  Processes: string[][];
}

/** The default listing: ps -ef's columns. */
export function defaultTop(list: ProcessInfo[]): TopAnswer {
  const stime = (iso?: string) => (iso ? new Date(iso).toTimeString().slice(0, 5) : '?');
  return {
    Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'],
    Processes: list.map((p) => [p.user, String(p.pid), String(p.ppid), '0', stime(p.startedAt), '?', hms(p.cpuNs), p.command]),
  };
}

const hms = (ns: number) => {
  const s = Math.floor(ns / 1e9);
  return [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');
};

/** Host ps with `psArgs`, cut to the lines of `pids`. */
export async function hostTop(psArgs: string, pids: number[]): Promise<TopAnswer> {
  const args = psArgs.split(' ').filter(Boolean);
  // -q PIDS makes ps read only those; some options (f: a forest) refuse it, and then ps lists everything.
  let r = await run('ps', [...args, '-q', pids.join(',')], { allowFail: true });
  if (r.code !== 0) r = await run('ps', args, { allowFail: true });
  if (r.code !== 0) throw dockerInvalid(`ps ${psArgs}: ${r.stderr.trim().split('\n').pop() || `exit status ${r.code}`}`);
  return parsePs(r.stdout, new Set(pids), psArgs);
}

/** ps output → titles and the rows whose PID is one of `pids`; the last column takes the rest of its line. */
export function parsePs(out: string, pids: Set<number>, psArgs = ''): TopAnswer {
  const lines = out.split('\n').filter((l) => l.trim());
  const titles = (lines.shift() ?? '').trim().split(/\s+/);
  const at = titles.indexOf('PID');
  if (at < 0) throw dockerInvalid(`ps ${psArgs}: its output has no PID column, which docker top needs to pick the container's processes`);
  const rows: string[][] = [];
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    const row = [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')];
    if (pids.has(Number(row[at]))) rows.push(row);
  }
  return { Titles: titles, Processes: rows };
}
