// The byte stream of a layer on its way to the extractor: gzip is sniffed by magic bytes and inflated, the
// uncompressed bytes are hashed (that hash is the diff ID) and counted against the caps, so a bomb is cut
// off while it inflates rather than after it filled the disk.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { exhausted } from '../common/errors.js';

export interface Caps {
  /** Total uncompressed tar bytes per layer. */
  maxLayerBytes: number;
  /** Tar entries per layer. */
  maxEntries: number;
  /** Largest uncompressed/compressed ratio tolerated for gzip input... */
  maxRatio: number;
  /** ...once this many uncompressed bytes have been seen (small files compress absurdly well legitimately). */
  ratioAfterBytes: number;
}

export const DEFAULT_CAPS: Caps = {
  maxLayerBytes: 8 * 1024 ** 3,
  maxEntries: 1_000_000,
  maxRatio: 100,
  ratioAfterBytes: 64 * 1024 ** 2,
};

const GZIP_MAGIC = [0x1f, 0x8b];

/** Output chunk size of gunzip (zlib's default of 16 KiB means many small chunks down the line). */
export const GUNZIP_CHUNK = 256 * 1024;

/** A chunk as a Buffer without copying its bytes (a string is encoded). */
export const asBuffer = (v: Uint8Array | string): Buffer =>
  typeof v === 'string' ? Buffer.from(v) : Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);

export class MeteredInput {
  private hash = createHash('sha256');
  private compressed = 0;
  private uncompressed = 0;
  gzip = false;

  constructor(private readonly caps: Caps) {}

  get diffId(): string {
    return 'sha256:' + this.hash.copy().digest('hex');
  }

  get size(): number {
    return this.uncompressed;
  }

  /** Uncompressed tar bytes of `src`, metered. Throws ResourceExhausted when a cap is passed. */
  async *chunks(src: AsyncIterable<Uint8Array | string>): AsyncGenerator<Buffer> {
    const it = (src as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headLen = 0;
    let ended = false;
    // Peek at least two bytes to decide gzip or plain.
    while (headLen < GZIP_MAGIC.length) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      const b = asBuffer(r.value);
      head.push(b);
      headLen += b.length;
    }
    const first = Buffer.concat(head);
    this.gzip = first.length >= 2 && first[0] === GZIP_MAGIC[0] && first[1] === GZIP_MAGIC[1];
    const self = this;
    async function* raw(): AsyncGenerator<Buffer> {
      try {
        self.compressed += first.length;
        if (first.length) yield first;
        while (!ended) {
          const r = await it.next();
          if (r.done) break;
          const b = asBuffer(r.value);
          self.compressed += b.length;
          yield b;
        }
      } finally {
        if (!ended) await it.return?.();
      }
    }
    let source: AsyncIterable<Buffer> = raw();
    let gunzip: ReturnType<typeof createGunzip> | undefined;
    if (this.gzip) {
      gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK });
      const r = Readable.from(raw());
      r.on('error', (e) => gunzip!.destroy(e));
      r.pipe(gunzip);
      source = gunzip;
    }
    try {
      for await (const chunk of source) {
        this.uncompressed += chunk.length;
        this.check();
        this.hash.update(chunk);
        yield chunk;
      }
    } finally {
      gunzip?.destroy();
    }
  }

  private check(): void {
    const { maxLayerBytes, maxRatio, ratioAfterBytes } = this.caps;
    if (this.uncompressed > maxLayerBytes) {
      throw exhausted(`layer refused: uncompressed size passes the cap of ${maxLayerBytes} bytes`);
    }
    if (this.gzip && this.uncompressed > ratioAfterBytes && this.uncompressed / Math.max(1, this.compressed) > maxRatio) {
      throw exhausted(
        `layer refused: compression ratio over ${maxRatio}:1 (${this.uncompressed} bytes from ${this.compressed}); likely a decompression bomb`,
      );
    }
  }
}
