// WWW-Authenticate challenges (RFC 7235) as registries send them, and the scope strings of the token protocol.
// Pure, unit-tested.

export interface Challenge {
  scheme: string; // lower-case: "bearer", "basic"
  params: Record<string, string>;
}

/** Parse every challenge in a WWW-Authenticate header value. Unknown shapes are skipped, never thrown. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const v of values) {
    let s = v;
    let cur: Challenge | undefined;
    while (s.length) {
      s = s.replace(/^[\s,]+/, '');
      // name="quoted" | name=token
      const param = /^([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/.exec(s);
      if (param && cur) {
        cur.params[param[1].toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3];
        s = s.slice(param[0].length);
        continue;
      }
      const scheme = /^([A-Za-z][A-Za-z0-9_-]*)(?=\s|$|,)/.exec(s);
      if (!scheme) break;
      cur = { scheme: scheme[1].toLowerCase(), params: {} };
      out.push(cur);
      s = s.slice(scheme[0].length);
    }
  }
  return out;
}

/** `repository:<path>:pull,push` — the scope a token is asked for. */
export const repoScope = (path: string, actions: readonly ('pull' | 'push')[]): string => `repository:${path}:${actions.join(',')}`;
