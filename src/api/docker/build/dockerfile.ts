// Dockerfile parsing for the classic builder: parser directives (escape), comments, line continuations,
// instruction flags (--from, --chown, --chmod), JSON (exec) vs shell forms, and $VAR / ${VAR} / ${VAR:-x} /
// ${VAR:+x} substitution. Pure, so it is unit-tested.

import { oneLine } from '../../../common/errors.js';
import { splitWords as splitShellWords } from '../../../common/words.js';
import { keyValues as configKeyValues } from '../../../storage/changes.js';

export interface Instruction {
  /** Upper-case instruction name. */
  cmd: string;
  /** The argument text after the flags, unsubstituted. */
  rest: string;
  flags: Record<string, string>;
  /** The JSON array form, when the arguments are one. */
  json?: string[];
  /** As written (continuations joined), for "Step n/N : ..." lines. */
  original: string;
  line: number;
}

export class DockerfileError extends Error {}

const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

export function parseDockerfile(text: string): Instruction[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  let escape = '\\';
  // Parser directives: only at the very top, before any comment or instruction.
  for (const l of lines) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(.+?)\s*$/.exec(l);
    if (!m) break;
    if (m[1].toLowerCase() === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw new DockerfileError(`invalid escape token '${m[2]}' does not match ` + '` or \\');
      escape = m[2];
    }
  }
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    if (buf === '' && (trimmed === '' || trimmed.startsWith('#'))) continue;
    if (buf !== '' && trimmed.startsWith('#')) continue; // comments inside a continued instruction
    if (buf === '') start = i + 1;
    const cont = raw.replace(/\s+$/, '').endsWith(escape);
    buf += cont ? raw.replace(/\s+$/, '').slice(0, -1) : raw;
    if (cont && i < lines.length - 1) continue;
    out.push(parseLine(buf.trim(), start));
    buf = '';
  }
  if (buf.trim()) out.push(parseLine(buf.trim(), start));
  if (!out.length) throw new DockerfileError('the Dockerfile cannot be empty');
  return out;
}

function parseLine(s: string, line: number): Instruction {
  const m = /^(\S+)\s*(.*)$/s.exec(s)!;
  const cmd = m[1].toUpperCase();
  if (!KNOWN.has(cmd)) throw new DockerfileError(`dockerfile parse error on line ${line}: unknown instruction: ${m[1]}`);
  let rest = m[2];
  const flags: Record<string, string> = {};
  if (['FROM', 'COPY', 'ADD', 'RUN'].includes(cmd)) {
    for (;;) {
      const f = /^--([a-zA-Z-]+)(?:=(\S*))?\s*/.exec(rest);
      if (!f) break;
      flags[f[1].toLowerCase()] = f[2] ?? 'true';
      rest = rest.slice(f[0].length);
    }
  }
  let json: string[] | undefined;
  if (rest.trim().startsWith('[')) {
    try {
      const v = JSON.parse(rest) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) json = v;
    } catch {
      /* shell form */
    }
  }
  return { cmd, rest: rest.trim(), flags, json, original: `${m[1]} ${m[2]}`.trim(), line };
}

/** Expand variables as the builder does (not inside single quotes; `\$` stays literal). */
export function substitute(s: string, vars: Map<string, string>): string {
  let out = '';
  let quote = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '\\' && s[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    if (ch === "'") quote = !quote;
    if (ch !== '$' || quote) {
      out += ch;
      continue;
    }
    if (s[i + 1] === '{') {
      const end = s.indexOf('}', i);
      if (end < 0) throw new DockerfileError(`missing '}' in ${s}`);
      const body = s.slice(i + 2, end);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/s.exec(body);
      if (!m) throw new DockerfileError(`bad substitution: \${${body}}`);
      const v = vars.get(m[1]);
      if (m[2] === '-') out += v ? v : m[3];
      else if (m[2] === '+') out += v ? m[3] : '';
      else out += v ?? '';
      i = end;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
    if (!m) {
      out += ch;
      continue;
    }
    out += vars.get(m[0]) ?? '';
    i += m[0].length;
  }
  return out;
}

/** ARG pairs (`k=v`, a bare `k`, the legacy `k v`), by the one instruction interpreter's rules (storage/changes.ts). */
export function keyValues(rest: string): [string, string][] {
  try {
    return configKeyValues('ARG', rest, true);
  } catch (e) {
    throw new DockerfileError(oneLine(e));
  }
}

/** Whitespace split honouring quotes and backslash escapes; quotes are removed. */
export function splitWords(s: string): string[] {
  try {
    return splitShellWords(s);
  } catch (e) {
    throw new DockerfileError(oneLine(e));
  }
}
