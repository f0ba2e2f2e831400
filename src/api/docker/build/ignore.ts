// The daemon's part of .dockerignore. The CLI leaves ignored files out of the context it sends, but the Dockerfile
// and .dockerignore itself travel anyway (the daemon must read them); docker then drops them from the context when
// .dockerignore names them, so `COPY . .` does not copy them. The CLI relies on that for a Dockerfile from outside the
// context: it adds it under a random name and lists that name in .dockerignore.

import { posix } from 'node:path';

/** A .dockerignore pattern as a regular expression over a clean relative path ('*' and '?' within one component,
 *  '**' across any number of them). */
export function patternRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
    else re += /[.+^${}()|[\]\\]/.test(ch) ? '\\' + ch : ch;
  }
  return new RegExp(`^${re}$`);
}

const clean = (p: string) => posix.normalize(p.replace(/^\/+/, '')).replace(/\/+$/, '');

/** Whether `.dockerignore` text excludes the context path `name` (the last matching line wins; '!' re-includes;
 *  a pattern matching a parent directory excludes what is inside it). */
export function isIgnored(text: string, name: string): boolean {
  const path = clean(name);
  const parts = path.split('/');
  let ignored = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const neg = line.startsWith('!');
    const pat = clean(neg ? line.slice(1).trim() : line);
    if (!pat || pat === '.') continue;
    const re = patternRegExp(pat);
    for (let n = 1; n <= parts.length; n++) {
      if (re.test(parts.slice(0, n).join('/'))) {
        ignored = !neg;
        break;
      }
    }
  }
  return ignored;
}
