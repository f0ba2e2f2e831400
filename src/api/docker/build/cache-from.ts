// --cache-from, as docker's classic builder does it: images the user names are trusted as cache sources. A step is
// taken from one when the image so far (its layers and history) begins that source's and the source's next history
// entry was made by the same instruction (its created_by); the step's image is then the image so far plus that entry
// and its layer. A local cache hit counts only on a source's line, as with docker.

import type { HistoryEntry, Image } from '../../../storage/types.js';

const sameEntry = (a: HistoryEntry, b: HistoryEntry) =>
  a.created === b.created && a.created_by === b.created_by && a.comment === b.comment && !!a.empty_layer === !!b.empty_layer && a.author === b.author;

/** Are `img`'s layers and history the beginning of `src`'s (or all of it)? */
export function begins(img: Pick<Image, 'layers' | 'history'>, src: Pick<Image, 'layers' | 'history'>): boolean {
  return (
    img.history.length <= src.history.length &&
    img.layers.length <= src.layers.length &&
    img.layers.every((d, i) => d === src.layers[i]) &&
    img.history.every((h, i) => sameEntry(h, src.history[i]))
  );
}

/** The first source whose step after `parent` was made by `createdBy`. */
export function continuing<T extends Pick<Image, 'layers' | 'history'>>(parent: Pick<Image, 'layers' | 'history'>, sources: T[], createdBy: string): T | undefined {
  return sources.find((s) => {
    const next = s.history[parent.history.length];
    if (!next || next.created_by !== createdBy || !begins(parent, s)) return false;
    return next.empty_layer || s.layers.length > parent.layers.length;
  });
}

/** RUN's created_by as docker writes it: the build arguments in use first (`|2 A=1 B=2 /bin/sh -c …`). */
export function runCreatedBy(argv: string[], args: Record<string, string>): string {
  const kv = Object.entries(args).map(([k, v]) => `${k}=${v}`);
  return (kv.length ? `|${kv.length} ${kv.join(' ')} ` : '') + argv.join(' ');
}
