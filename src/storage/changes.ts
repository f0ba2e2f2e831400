// The one interpreter of Dockerfile instructions that change an image's config (CMD, ENV, EXPOSE, ...), for both
// `--change` lines (import, commit) and the builder's metadata steps (src/api/docker/build/builder.ts). Pure. The
// builder passes its variable expansion; `--change` lines take no variables and only docker's allowed instructions.

import { posix } from 'node:path';
import { invalid } from '../common/errors.js';
import type { ImageConfig } from './types.js';
import { splitWords } from '../common/words.js';

export { splitWords };

/** An instruction as parsed: upper-case name, the argument text, and its JSON array form when it is one. */
export interface ConfigInstruction {
  cmd: string;
  rest: string;
  json?: string[];
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** The instructions `docker commit/import --change` accepts (MAINTAINER, SHELL are the builder's only). */
export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'] as const;

/** JSON array of strings if the argument is one, else undefined (then the shell form applies). */
export function jsonArray(arg: string): string[] | undefined {
  if (!arg.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(arg) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* not JSON: docker falls back to the shell form */
  }
  return undefined;
}

/**
 * `k=v k2="v 2"` pairs, or the legacy single `k v` form. `bare` (ARG) lets a word stand without a value (`ARG name`);
 * otherwise (ENV, LABEL) a pair without `=` is refused, as docker refuses it.
 */
export function keyValues(instr: string, arg: string, bare = false): [string, string][] {
  const words = splitWords(arg);
  if (words.length === 0) {
    if (bare) return [];
    throw invalid(`${instr} needs at least one argument`);
  }
  if (!words[0].includes('=')) {
    const sp = arg.search(/\s/);
    if (sp < 0) {
      if (bare) return [[arg, '']];
      throw invalid(`${instr} ${arg}: expected key=value or "key value"`);
    }
    return [[arg.slice(0, sp), splitWords(arg.slice(sp).trim()).join(' ')]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0 && bare) return [w, ''];
    if (eq <= 0) throw invalid(`${instr}: "${w}" is not key=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function setEnv(env: string[] | undefined, key: string, value: string): string[] {
  return [...(env ?? []).filter((e) => e.split('=')[0] !== key), `${key}=${value}`];
}

function exposed(c: ImageConfig, words: string[]): void {
  c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
  for (const p of words) {
    const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
    if (!pm) throw invalid(`EXPOSE ${p}: not a port`);
    const lo = Number(pm[1]);
    const hi = pm[2] ? Number(pm[2]) : lo;
    if (lo < 1 || hi > 65535 || hi < lo) throw invalid(`EXPOSE ${p}: port out of range`);
    for (let n = lo; n <= hi; n++) c.ExposedPorts[`${n}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
  }
}

/** Whether `cmd` is one this interpreter applies (the builder runs the others: FROM, RUN, COPY, ADD, ARG...). */
export function isConfigInstruction(cmd: string): boolean {
  return ['CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'WORKDIR', 'USER', 'STOPSIGNAL', 'EXPOSE', 'VOLUME', 'SHELL', 'MAINTAINER', 'HEALTHCHECK', 'ONBUILD'].includes(cmd);
}

/**
 * Apply one config instruction to a copy of `cfg`. `expand` substitutes build variables where docker does (ENV and
 * LABEL values, LABEL keys, WORKDIR, USER, STOPSIGNAL, EXPOSE, VOLUME's shell form); CMD, ENTRYPOINT and SHELL are
 * kept as written (the container's shell expands them).
 */
export function applyInstruction(cfg: ImageConfig, ins: ConfigInstruction, expand: (s: string) => string = (s) => s): ImageConfig {
  const { cmd, rest, json } = ins;
  const c: ImageConfig = { ...cfg };
  const need = () => {
    if (rest === '') throw invalid(`${cmd} needs an argument`);
  };
  switch (cmd) {
    case 'CMD':
      need();
      c.Cmd = json ?? [...(c.Shell ?? DEFAULT_SHELL), rest];
      break;
    case 'ENTRYPOINT':
      need();
      c.Entrypoint = json ?? [...(c.Shell ?? DEFAULT_SHELL), rest];
      break;
    case 'SHELL':
      if (!json?.length) throw invalid('SHELL requires the arguments to be in JSON form');
      c.Shell = json;
      break;
    case 'ENV':
      for (const [k, v] of keyValues(cmd, rest)) c.Env = setEnv(c.Env, k, expand(v));
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of keyValues(cmd, rest)) c.Labels[expand(k)] = expand(v);
      break;
    case 'WORKDIR': {
      need();
      const dir = splitWords(expand(rest)).join(' ');
      // A relative WORKDIR is relative to the previous one.
      c.WorkingDir = dir.startsWith('/') ? posix.normalize(dir) : posix.join(c.WorkingDir || '/', dir);
      break;
    }
    case 'USER':
      need();
      c.User = expand(rest);
      break;
    case 'STOPSIGNAL': {
      need();
      const sig = expand(rest);
      if (!/^(SIG)?[A-Z0-9+-]+$/i.test(sig)) throw invalid(`STOPSIGNAL ${sig}: not a signal`);
      c.StopSignal = sig;
      break;
    }
    case 'EXPOSE':
      need();
      exposed(c, splitWords(expand(rest)));
      break;
    case 'VOLUME': {
      need();
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of json ?? splitWords(expand(rest))) {
        if (v === '') throw invalid('VOLUME: empty path');
        c.Volumes[v] = {};
      }
      break;
    }
    case 'HEALTHCHECK':
      need();
      c.Healthcheck = parseHealthcheck(rest); // the shell form is CMD-SHELL whatever SHELL says, as in docker
      break;
    case 'ONBUILD': {
      need();
      const trigger = rest.split(/\s/, 1)[0].toUpperCase();
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(trigger)) throw invalid(`${trigger} isn't allowed as an ONBUILD trigger`);
      c.OnBuild = [...(c.OnBuild ?? []), rest];
      break;
    }
    case 'MAINTAINER':
      // Deprecated; docker records it only as the image's author, which the builder's history already names.
      break;
    default:
      throw invalid(`${cmd} does not change an image's config`);
  }
  return c;
}

/** `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D] [--retries=N] CMD …` or `NONE`,
 *  as docker's image config keeps it (durations in nanoseconds). */
export function parseHealthcheck(text: string): NonNullable<ImageConfig['Healthcheck']> {
  let rest = text.trim();
  const flags: Record<string, string> = {};
  for (let f = /^--([a-z-]+)=(\S+)\s*/.exec(rest); f; f = /^--([a-z-]+)=(\S+)\s*/.exec(rest)) {
    flags[f[1]] = f[2];
    rest = rest.slice(f[0].length);
  }
  if (/^NONE$/i.test(rest)) {
    if (Object.keys(flags).length) throw invalid('HEALTHCHECK NONE takes no options');
    return { Test: ['NONE'] };
  }
  const m = /^CMD\s+(.+)$/is.exec(rest);
  if (!m) throw invalid('HEALTHCHECK needs CMD followed by a command, or NONE');
  const json = jsonArray(m[1]);
  const hc: NonNullable<ImageConfig['Healthcheck']> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', m[1]] };
  const keys = { interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval' } as const;
  for (const [flag, v] of Object.entries(flags)) {
    if (flag === 'retries') {
      if (!/^\d+$/.test(v)) throw invalid(`HEALTHCHECK --retries=${v}: not a whole number`);
      hc.Retries = Number(v);
    } else if (flag in keys) hc[keys[flag as keyof typeof keys]] = goDuration(v, flag);
    else throw invalid(`HEALTHCHECK: unknown option --${flag}`);
  }
  return hc;
}

/** A Go duration ("30s", "1m30s", "500ms") in nanoseconds. */
function goDuration(v: string, what: string): number {
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let ns = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let m: RegExpExecArray | null;
  let seen = 0;
  while ((m = re.exec(v))) {
    ns += Number(m[1]) * unit[m[2]];
    seen = re.lastIndex;
  }
  if (seen !== v.length || v === '') throw invalid(`HEALTHCHECK --${what}=${v}: not a duration`);
  return Math.round(ns);
}

/** One `--change` line as an instruction. */
export function parseChange(line: string): ConfigInstruction {
  const m = /^(\S+)\s*(.*)$/s.exec(line.trim());
  if (!m) throw invalid(`empty change line`);
  const rest = m[2].trim();
  return { cmd: m[1].toUpperCase(), rest, json: jsonArray(rest) };
}

/** Apply one change line to a copy of `cfg`. */
export function applyChange(cfg: ImageConfig, line: string): ImageConfig {
  const ins = parseChange(line);
  if (!(CHANGE_INSTRUCTIONS as readonly string[]).includes(ins.cmd)) {
    throw invalid(`unknown or unsupported change instruction "${line.trim().split(/\s/)[0]}" (allowed: ${CHANGE_INSTRUCTIONS.join(' ')})`);
  }
  return applyInstruction(cfg, ins);
}

export function applyChanges(cfg: ImageConfig, lines: readonly string[] = []): ImageConfig {
  return lines.reduce(applyChange, cfg);
}
