// Every blob is checked against its descriptor while it streams: the bytes are hashed and counted as they pass, more
// bytes than announced stop the download at once, and the end checks the count and the digest. Whatever consumes
// the stream (the content store, the layer extractor) throws away what it wrote when this throws.

import { createHash } from 'node:crypto';
import { invalid, isSiloError, oneLine, unavailable } from '../../common/errors.js';
import type { Descriptor } from './media.js';

const BATCH = 1024 * 1024;

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

/**
 * Count a blob's bytes as they stream (for progress) and name the blob when the connection fails or the body runs
 * past its size; the content store verifies the digest and the length itself as it writes.
 */
export async function* counted(source: AsyncIterable<Uint8Array>, d: Descriptor, label: string, progress?: Progress): AsyncGenerator<Buffer> {
  let n = 0;
  // Network reads come in 16–64 KiB pieces; handing them on in ~1 MiB batches makes every stage downstream (file
  // writes, hashing, gunzip, the tar parser) run a sixteenth as often.
  let batch: Buffer[] = [];
  let batched = 0;
  try {
    for await (const c of source) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
      n += b.length;
      if (n > d.size) throw invalid(`${label} ${d.digest} refused: more than the ${d.size} bytes its descriptor gives`);
      batch.push(b);
      batched += b.length;
      if (batched >= BATCH) {
        progress?.(n);
        yield batch.length === 1 ? batch[0] : Buffer.concat(batch, batched);
        batch = [];
        batched = 0;
      }
    }
    if (batched) {
      progress?.(n);
      yield batch.length === 1 ? batch[0] : Buffer.concat(batch, batched);
    }
  } catch (e) {
    if (isSiloError(e)) throw e;
    throw unavailable(`${label} ${d.digest}: download failed after ${n} of ${d.size} bytes: ${oneLine(e)}`);
  }
  if (n !== d.size) throw unavailable(`${label} ${d.digest}: download ended after ${n} of ${d.size} bytes (connection dropped)`);
}
