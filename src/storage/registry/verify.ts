// Every blob is checked against its descriptor while it streams: the bytes are hashed and counted as they pass, more
// bytes than announced stop the download at once, and the end checks the count and the digest. Whatever consumes
// the stream (the content store, the layer extractor) throws away what it wrote when this throws.

import { createHash } from 'node:crypto';
import { invalid, isSiloError, oneLine, unavailable } from '../../common/errors.js';
import type { Descriptor } from './media.js';

export interface Progress {
  (bytes: number): void;
}

/** Yield `source`'s chunks; throw (naming `label` and the digest) on excess, truncation, mismatch or a dropped connection. */
export async function* verified(source: AsyncIterable<Uint8Array>, d: Descriptor, label: string, progress?: Progress): AsyncGenerator<Buffer> {
  const h = createHash('sha256');
  let n = 0;
  const name = `${label} ${d.digest}`;
  try {
    for await (const c of source) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
      n += b.length;
      if (n > d.size) throw invalid(`${name} refused: more than the ${d.size} bytes its descriptor gives`);
      h.update(b);
      progress?.(n);
      yield b;
    }
  } catch (e) {
    if (isSiloError(e)) throw e;
    throw unavailable(`${name}: download failed after ${n} of ${d.size} bytes: ${oneLine(e)}`);
  }
  if (n !== d.size) throw unavailable(`${name}: download ended after ${n} of ${d.size} bytes (connection dropped)`);
  const got = 'sha256:' + h.digest('hex');
  if (got !== d.digest) throw invalid(`${name} refused: its content has digest ${got}`);
}
