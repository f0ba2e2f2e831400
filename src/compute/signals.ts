import { constants } from 'node:os';
import { invalid } from '../common/errors.js';

const byNumber = new Map<number, string>(Object.entries(constants.signals).map(([k, v]) => [v, k]));

/** "TERM", "SIGTERM", "15" → "SIGTERM"; anything else is the client's error. */
export function normalizeSignal(s: string | number): string {
  const str = String(s).trim().toUpperCase();
  if (/^\d+$/.test(str)) {
    const name = byNumber.get(Number(str));
    if (name) return name;
  } else {
    const name = str.startsWith('SIG') ? str : `SIG${str}`;
    if (name in constants.signals) return name;
  }
  throw invalid(`invalid signal: ${s}`);
}
