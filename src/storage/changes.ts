// Dockerfile-style `--change` lines applied to an image config. Pure; only the instructions docker accepts
// for import/commit changes are allowed, anything else is InvalidArgument.

import { invalid } from '../common/errors.js';
import type { ImageConfig } from './types.js';
import { splitWords } from '../common/words.js';

export { splitWords };

/** JSON array of strings if the argument is one, else undefined (then the shell form applies). */
function jsonArray(arg: string): string[] | undefined {
  if (!arg.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(arg) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* not JSON: docker falls back to the shell form */
  }
  return undefined;
}

const execForm = (arg: string): string[] => jsonArray(arg) ?? ['/bin/sh', '-c', arg];

/** "k=v k2=v2" pairs, or the legacy single "k v" form. */
function keyValues(instr: string, arg: string): [string, string][] {
  const words = splitWords(arg);
  if (words.length === 0) throw invalid(`${instr} needs at least one argument`);
  if (!words[0].includes('=')) {
    const sp = arg.search(/\s/);
    if (sp < 0) throw invalid(`${instr} ${arg}: expected key=value or "key value"`);
    return [[arg.slice(0, sp), arg.slice(sp).trim()]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw invalid(`${instr}: "${w}" is not key=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function setEnv(env: string[], key: string, value: string): string[] {
  return [...env.filter((e) => e.split('=')[0] !== key), `${key}=${value}`];
}

/** Apply one change line to a copy of `cfg`. */
export function applyChange(cfg: ImageConfig, line: string): ImageConfig {
  const trimmed = line.trim();
  const m = /^(\S+)\s*(.*)$/s.exec(trimmed);
  if (!m) throw invalid(`empty change line`);
  const instr = m[1].toUpperCase();
  const arg = m[2].trim();
  const c: ImageConfig = { ...cfg };
  const need = () => {
    if (arg === '') throw invalid(`${instr} needs an argument`);
  };
  switch (instr) {
    case 'CMD':
      need();
      c.Cmd = execForm(arg);
      break;
    case 'ENTRYPOINT':
      need();
      c.Entrypoint = execForm(arg);
      break;
    case 'ENV':
      for (const [k, v] of keyValues(instr, arg)) c.Env = setEnv(c.Env ?? [], k, v);
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of keyValues(instr, arg)) c.Labels[k] = v;
      break;
    case 'WORKDIR': {
      need();
      const dir = splitWords(arg).join(' ');
      // A relative WORKDIR is relative to the previous one, as in a Dockerfile.
      c.WorkingDir = dir.startsWith('/') ? dir : `${(c.WorkingDir ?? '/').replace(/\/$/, '')}/${dir}`;
      break;
    }
    case 'USER':
      need();
      c.User = arg;
      break;
    case 'STOPSIGNAL':
      need();
      if (!/^(SIG)?[A-Z0-9+-]+$/i.test(arg)) throw invalid(`STOPSIGNAL ${arg}: not a signal`);
      c.StopSignal = arg;
      break;
    case 'EXPOSE': {
      need();
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of splitWords(arg)) {
        const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!pm) throw invalid(`EXPOSE ${p}: not a port`);
        const lo = Number(pm[1]);
        const hi = pm[2] ? Number(pm[2]) : lo;
        if (lo < 1 || hi > 65535 || hi < lo) throw invalid(`EXPOSE ${p}: port out of range`);
        for (let n = lo; n <= hi; n++) c.ExposedPorts[`${n}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
      }
      break;
    }
    case 'VOLUME': {
      need();
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of jsonArray(arg) ?? splitWords(arg)) {
        if (v === '') throw invalid('VOLUME: empty path');
        c.Volumes[v] = {};
      }
      break;
    }
    default:
      throw invalid(`unknown or unsupported change instruction "${m[1]}" (allowed: CMD ENTRYPOINT ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR)`);
  }
  return c;
}

export function applyChanges(cfg: ImageConfig, lines: readonly string[] = []): ImageConfig {
  return lines.reduce(applyChange, cfg);
}
