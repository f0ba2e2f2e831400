// Pure checks on archive entry paths. A layer is a jail: every entry and every hardlink target must name a
// place inside it. Docker treats a leading "/" as relative to the layer root; any ".." that would climb
// above the root is refused (CVE-2014-6407, CVE-2014-9356), not silently clamped.

import { invalid } from '../common/errors.js';

/**
 * Normalise a tar entry name to path components relative to the layer root ([] is the root itself).
 * Throws InvalidArgument naming the entry if it escapes the root or is malformed.
 */
export function entryComponents(name: string, what = 'entry'): string[] {
  if (name.includes('\0')) throw invalid(`refused ${what} "${name.replace(/\0/g, '\\0')}": NUL byte in path`);
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw invalid(`refused ${what} "${name}": path escapes the layer root`);
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out;
}

/** The same as entryComponents, joined: "" for the root. */
export const cleanEntryPath = (name: string, what = 'entry'): string => entryComponents(name, what).join('/');
