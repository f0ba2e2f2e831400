// A real pino logger whose lines a test reads back as "<msg>: <err>" (or the message alone).

import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/common/log.js';

export function captureLog(): { log: Logger; lines: string[]; records: Record<string, unknown>[] } {
  const lines: string[] = [];
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) {
        const r = JSON.parse(l) as Record<string, unknown>;
        records.push(r);
        lines.push(r.err === undefined ? String(r.msg) : `${String(r.msg)}: ${String(r.err)}`);
      }
      done();
    },
  });
  return { log: createLogger('debug', sink), lines, records };
}
