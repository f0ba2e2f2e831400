// Layers derived from blobs: a layer blob is stored in the content store and, in the same pass, unpacked into the
// layer store's ingest/ (a loose layer, not yet placed on a parent), so the bytes are read once; or a stored blob is
// unpacked later, when an image needs a layer the store has not unpacked.

import type { BlobInfo, ContentStore, Lease } from './content.js';
import type { ByteSource } from './extract.js';
import { compressionOf } from './input.js';
import type { LayerStore, LooseLayer } from './layers.js';
import { layerMediaType } from './manifest.js';
import { Pipe } from './pipe.js';

export interface StoredLayer {
  blob: BlobInfo;
  /** The OCI media type of the blob as its bytes show it (gzip, zstd or plain tar). */
  mediaType: string;
  /** Resolves when the blob is durable and in place (already, unless `defer`); rejects if that failed. */
  committed: Promise<void>;
  /** With `unpack`: the layer unpacked along, or why it was refused. */
  prepared?: { layer: LooseLayer } | { error: unknown };
  /** With `spool`: the blob's temporary name, for ContentStore.adopt (nothing is held or in place yet). */
  tmp?: string;
}

/**
 * Store `src` as a blob (verified against `expected`/`size` when given); with `unpack`, unpack it as it streams. With
 * `strict`, a refused layer stops the blob too (an import has no use for the blob of a layer it refused).
 */
export async function storeLayer(content: ContentStore, layers: LayerStore, lease: Lease | undefined, o: { expected?: string; size?: number; src: ByteSource; mediaType: string; unpack: boolean; strict?: boolean; defer?: boolean; spool?: boolean }): Promise<StoredLayer> {
  let head = Buffer.alloc(0);
  const pipe = o.unpack ? new Pipe() : undefined;
  let refused: { error: unknown } | undefined;
  const unpacking = pipe
    ? layers.extract(pipe, false).then(
        (layer) => ({ layer }),
        (error: unknown) => (refused = { error }),
      )
    : undefined;
  let blob: BlobInfo;
  let committed: Promise<void>;
  let tmp: string | undefined;
  try {
    const tap = (b: Buffer) => {
      if (o.strict && refused) throw refused.error;
      if (head.length < 4) head = Buffer.concat([head, b.subarray(0, 4)]);
      return pipe?.push(b);
    };
    // Spooled (in a worker thread): written and durable under a temporary name; the caller adopts it.
    if (o.spool || !lease) {
      const r = await content.spool(o.expected, o.size, o.src, o.mediaType, tap);
      blob = { digest: r.digest, size: r.size };
      tmp = r.tmp;
      committed = Promise.resolve();
    } else {
      const r = await content.receive(lease, o.expected, o.size, o.src, o.mediaType, tap);
      blob = { digest: r.digest, size: r.size };
      committed = r.committed;
    }
    pipe?.end();
    if (!o.defer) await committed;
  } catch (e) {
    pipe?.end(e);
    const r = await unpacking;
    if (r && 'layer' in r) await layers.discardLoose(r.layer);
    // The extractor's refusal, when there is one, says more than the blob's end (a bomb, a hostile entry).
    throw o.strict && r && 'error' in r ? r.error : e;
  }
  const prepared = await unpacking;
  // The store hashed the very bytes the extractor read: for a plain tar that digest is the diff ID (not hashed twice).
  if (prepared && 'layer' in prepared && prepared.layer.diffId === '') prepared.layer.diffId = blob.digest;
  return { blob, mediaType: layerMediaType(compressionOf(head)), committed, ...(prepared ? { prepared } : {}), ...(tmp ? { tmp } : {}) };
}

/** Unpack a stored layer blob into a loose layer. */
export async function unpackBlob(content: ContentStore, layers: LayerStore, digest: string): Promise<LooseLayer> {
  return layers.extract((await content.open(digest)) as unknown as ByteSource);
}

/**
 * Layers unpacked ahead of need, by blob digest, until an image takes them. One blob may sit at several places of
 * a chain (or of several images): each place but the last gets a copy.
 */
export class LoosePool {
  private readonly ready = new Map<string, { layer: LooseLayer } | { error: unknown }>();
  private readonly uses = new Map<string, number>();

  constructor(private readonly layers: LayerStore) {}

  put(digest: string, p: { layer: LooseLayer } | { error: unknown }): void {
    const old = this.ready.get(digest);
    if (old && 'layer' in old) void this.layers.discardLoose(old.layer);
    this.ready.set(digest, p);
  }

  /** `digest` will be taken once more than counted so far. */
  expect(digest: string): void {
    this.uses.set(digest, (this.uses.get(digest) ?? 0) + 1);
  }

  /** The layer unpacked from `digest` (or a copy while more uses are expected); undefined if there is none. */
  async take(digest: string): Promise<LooseLayer | undefined> {
    const p = this.ready.get(digest);
    if (!p) return undefined;
    if ('error' in p) throw p.error;
    const left = (this.uses.get(digest) ?? 1) - 1;
    this.uses.set(digest, left);
    if (left > 0) return this.layers.copy(p.layer);
    this.ready.delete(digest);
    return p.layer;
  }

  async discardAll(): Promise<void> {
    for (const p of this.ready.values()) if ('layer' in p) await this.layers.discardLoose(p.layer);
    this.ready.clear();
  }
}
