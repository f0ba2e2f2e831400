// Ordering of plain ASCII keys (ids, ISO 8601 timestamps, paths) by UTF-16 code units, which is what `<` compares.
// Not localeCompare: that asks ICU for a collator, which pages a few MB of the node binary's ICU data into the
// daemon's resident memory for keys that need no locale.

export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
