// Docker's log drivers and options (`--log-driver`, `--log-opt`) mapped onto the create specification's Logging, for
// every front door that speaks them (the Docker API, the silo CLI). Silo keeps one kind of log file (conmon's CRI
// format), rotated by size: json-file and local both mean it, none keeps nothing. Only the options that mean the
// same here are taken; any other is refused by name, never dropped.

/** The smallest size a log file may rotate at: below a page every few lines would rotate. */
export const MIN_LOG_SIZE = 4096;

export interface LogLimits { MaxSizeInBytes?: number; MaxFiles?: number }
export type LogSpec = { Driver?: 'file' | 'none' } & LogLimits;

/** docker's RAMInBytes: a number with an optional binary unit (k, m, g, t; b, kb, mib… alike), or -1 for no limit. */
export function parseLogSize(v: string, what: string): number {
  if (v.trim() === '-1') return -1;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt])?i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`invalid ${what} '${v}': a size such as 10m, 512k or 1g`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase()]!;
  const n = Math.floor(Number(m[1]) * mult);
  if (n < MIN_LOG_SIZE) throw new Error(`invalid ${what} '${v}': at least ${MIN_LOG_SIZE / 1024}k (or -1 for no limit)`);
  return n;
}

export function parseLogFiles(v: string, what: string): number {
  return parseWholeNumber(v, what, 1, 100);
}

/** A daemon option's whole number from `min` to `max`, or one line saying what it must be. */
export function parseWholeNumber(v: string, what: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < min || n > max) throw new Error(`invalid ${what} '${v}': a whole number from ${min} to ${max}`);
  return n;
}

const DRIVERS = ['json-file', 'local', 'none'];

/** A docker log driver and its options as the create specification's Logging; throws one line for what Silo lacks. */
export function dockerLogging(driver: string | undefined, opts: Record<string, string> = {}): LogSpec {
  const d = driver || 'json-file';
  if (!DRIVERS.includes(d)) throw new Error(`logging driver ${d} is not supported by Silo (json-file, local and none are)`);
  const keys = Object.keys(opts);
  if (d === 'none') {
    if (keys.length) throw new Error(`logging driver none takes no options (--log-opt ${keys.join(', ')})`);
    return { Driver: 'none' };
  }
  const out: LogSpec = {};
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'max-size') out.MaxSizeInBytes = parseLogSize(v, 'max-size');
    else if (k === 'max-file') out.MaxFiles = parseLogFiles(v, 'max-file');
    // Compression of rotated files is not built: off is what Silo does anyway, on is refused.
    else if (k === 'compress' && /^(false|0)$/i.test(v)) continue;
    else throw new Error(`log option ${k} is not supported by Silo (max-size and max-file are, for ${d})`);
  }
  return out;
}

/** `key=value` pairs as docker's --log-opt gives them. */
export function parseLogOpts(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of pairs) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`invalid --log-opt '${kv}': expected key=value`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}
