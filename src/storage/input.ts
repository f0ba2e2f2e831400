// The byte stream of a layer on its way to the extractor: gzip is sniffed by magic bytes and inflated, the
// uncompressed bytes are hashed (that hash is the diff ID) and counted against the caps, so a bomb is cut
// off while it inflates rather than after it filled the disk.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { createGunzip } from 'node:zlib';
import { exhausted, invalid } from '../common/errors.js';

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
const ZSTD_MAGIC = 0xfd2fb528;

/** The compression a layer blob's first bytes show. */
export function compressionOf(head: Uint8Array): 'gzip' | 'zstd' | 'none' {
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return 'gzip';
  if (head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0) === ZSTD_MAGIC) return 'zstd';
  return 'none';
}

/** zstd decompression from Node's zlib (Node ≥ 22.15); older Nodes have none, and the layer is refused clearly. */
function zstdDecompress(): NodeJS.ReadWriteStream & { destroy(e?: Error): void } {
  const make = (zlib as unknown as { createZstdDecompress?: (o?: object) => NodeJS.ReadWriteStream & { destroy(e?: Error): void } }).createZstdDecompress;
  if (!make) throw invalid(`layer refused: zstd-compressed layers need Node 22.15 or later (this daemon runs Node ${process.versions.node})`);
  return make({ chunkSize: GUNZIP_CHUNK });
}

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

  /** `hashPlain: false`: an uncompressed stream is not hashed (its reader hashes the same bytes: see diffId). */
  constructor(
    private readonly caps: Caps,
    private readonly hashPlain = true,
  ) {}

  /** The diff ID; '' for an uncompressed stream read with `hashPlain: false` (its digest is the diff ID). */
  get diffId(): string {
    if (!this.gzip && !this.hashPlain) return '';
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
    // Peek at least four bytes to decide gzip, zstd or plain.
    while (headLen < 4) {
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
    const kind = compressionOf(first);
    this.gzip = kind !== 'none'; // the ratio cap applies to either compression
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
    let gunzip: (NodeJS.ReadWriteStream & { destroy(e?: Error): void }) | undefined;
    if (this.gzip) {
      gunzip = kind === 'zstd' ? zstdDecompress() : createGunzip({ chunkSize: GUNZIP_CHUNK });
      const r = Readable.from(raw());
      r.on('error', (e) => gunzip!.destroy(e));
      r.pipe(gunzip);
      source = gunzip as unknown as AsyncIterable<Buffer>;
    }
    try {
      for await (const chunk of source) {
        this.uncompressed += chunk.length;
        this.check();
        if (this.gzip || this.hashPlain) this.hash.update(chunk);
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
