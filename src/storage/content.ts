// The content store: blobs (manifests, configs, layer tars compressed as they came) kept by digest under
// root/blobs/sha256/<hex>, each written once: into blobs/ingest/ under a fresh name, hashed and counted while it
// streams in, fsynced, and renamed into place only when its digest (and size, when known) is the one expected — a
// mismatch or a short body keeps nothing and names the blob. Images reference blobs; the storage service's sweep
// deletes the ones no image references. A blob being ingested or in use by an operation that has not yet written
// its image record is held by a lease (in memory: after a crash, nothing holds it and the sweep at open collects it).

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { diskFull, internal, invalid, isSiloError, notFound, oneLine, SiloError } from '../common/errors.js';
import { faultPoint } from '../common/fault.js';
import { hexOf, isDigest, sha256 } from './digest.js';
import { FileWriter } from './extract.js';
import { asBuffer } from './input.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Media types Silo writes and reads. */
export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** Is this a layer's media type (as opposed to a manifest, index or config)? */
export const isLayerMedia = (m: string): boolean => /\.layer\.|\.rootfs\.|diff\.tar/.test(m);
const isManifestMedia = (m: string): boolean => /manifest|index/.test(m);

/** Manifests and indexes larger than this are refused (the Distribution spec's and containerd's limit). */
export const MAX_MANIFEST = 4 * 1024 * 1024;
/** Any JSON document read back into memory (configs included). */
export const MAX_JSON = 16 * 1024 * 1024;

const WRITE_HWM = 1024 * 1024;

export class ContentStore {
  readonly dir: string;
  readonly tmpDir: string;
  /** Digest → number of leases holding it. */
  private holds = new Map<string, number>();

  constructor(root: string) {
    this.dir = join(root, 'blobs', 'sha256');
    this.tmpDir = join(root, 'blobs', 'ingest');
  }

  async init(): Promise<void> {
    for (const d of [join(this.dir, '..'), this.dir, this.tmpDir]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700);
    }
    // Half-written blobs of an interrupted ingest: never renamed into place, so never seen by anyone.
    for (const n of await readdir(this.tmpDir)) await rm(join(this.tmpDir, n), { recursive: true, force: true });
  }

  path(digest: string): string {
    if (!isDigest(digest)) throw invalid(`bad digest ${JSON.stringify(digest)}: want sha256:<64 hex>`);
    return join(this.dir, hexOf(digest));
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  private async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      return { digest, size: (await stat(this.path(digest))).size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async size(digest: string): Promise<number> {
    const s = await this.stat(digest);
    if (!s) throw notFound('blob', digest);
    return s.size;
  }

  /** A read stream of the blob; NotFound if it is not stored. */
  async open(digest: string, opts: { start?: number } = {}): Promise<NodeJS.ReadableStream> {
    const p = this.path(digest);
    const fh = await open(p, 'r').catch((e) => Promise.reject(e.code === 'ENOENT' ? notFound('blob', digest) : e));
    return fh.createReadStream({ start: opts.start, highWaterMark: WRITE_HWM });
  }

  /** A small blob (a manifest or config) in memory. */
  async read(digest: string, max = MAX_JSON): Promise<Buffer> {
    const size = await this.size(digest);
    if (size > max) throw invalid(`blob ${digest} is ${size} bytes, over the ${max} allowed for a JSON document`);
    const chunks: Buffer[] = [];
    for await (const c of createReadStream(this.path(digest))) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async list(): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    for (const n of await readdir(this.dir)) {
      if (!/^[a-f0-9]{64}$/.test(n)) continue;
      const s = await this.stat('sha256:' + n);
      if (s) out.push(s);
    }
    return out;
  }

  /** Delete a blob. The caller made sure nothing references or holds it (the sweep, under the storage lock). */
  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  hold(digest: string): void {
    this.holds.set(digest, (this.holds.get(digest) ?? 0) + 1);
  }

  unhold(digest: string): void {
    const n = (this.holds.get(digest) ?? 0) - 1;
    if (n > 0) this.holds.set(digest, n);
    else this.holds.delete(digest);
  }

  isHeld(digest: string): boolean {
    return this.holds.has(digest);
  }

  /**
   * Store the bytes of `src` as a blob, verified while they stream: against `expected` (when given) and `size` (when
   * given; a body running past it is cut off there). Each chunk is also handed to `tap` (a layer extractor reading
   * along). On success the blob is held for `lease` (before it is renamed into place, so no sweep can take it).
   */
  async ingest(lease: Lease, expected: string | undefined, size: number | undefined, src: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>, mediaType: string, tap?: (chunk: Buffer) => Promise<void> | void): Promise<BlobInfo> {
    const r = await this.receive(lease, expected, size, src, mediaType, tap);
    await r.committed;
    return { digest: r.digest, size: r.size };
  }

  /**
   * As ingest, but resolves once every byte is written and verified; `committed` resolves once the blob is durable and
   * in place (fsync, rename), so a caller can read the next blob meanwhile. The caller must await `committed`: it
   * rejects if the commit fails, and then nothing was kept.
   */
  async receive(lease: Lease, expected: string | undefined, size: number | undefined, src: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>, mediaType: string, tap?: (chunk: Buffer) => Promise<void> | void): Promise<BlobInfo & { committed: Promise<void> }> {
    const w = await this.write(expected, size, src, mediaType, tap);
    const committed = (async () => {
      try {
        await w.fh.sync();
        await w.fh.close();
      } catch (e) {
        await w.fail(e);
      }
      await this.adopt(lease, w.tmp, w.digest);
    })();
    committed.catch(() => {}); // handled by the caller's await; no unhandled rejection meanwhile
    return { digest: w.digest, size: w.size, committed };
  }

  /**
   * As receive, but leaves the verified blob, durable, under a temporary name in the ingest directory for `adopt` (a
   * download in a worker thread writes it there; the daemon's thread adopts it).
   */
  async spool(expected: string | undefined, size: number | undefined, src: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>, mediaType: string, tap?: (chunk: Buffer) => Promise<void> | void): Promise<BlobInfo & { tmp: string }> {
    const w = await this.write(expected, size, src, mediaType, tap);
    try {
      await w.fh.sync();
      await w.fh.close();
    } catch (e) {
      await w.fail(e);
    }
    return { digest: w.digest, size: w.size, tmp: w.tmp };
  }

  /** Put a spooled blob (durable, verified as `digest`) in place, held for `lease`; on failure it is deleted. */
  async adopt(lease: Lease, tmp: string, digest: string): Promise<void> {
    if (!isDigest(digest) || join(this.tmpDir, basename(tmp)) !== tmp) throw internal(`blob ${digest}: not a spooled blob of this store`);
    lease.hold(digest);
    try {
      await rename(tmp, this.path(digest)); // an existing copy is the same bytes: replacing it is harmless
      await syncDir(this.dir);
    } catch (e) {
      lease.unhold(digest);
      await rm(tmp, { force: true });
      const errno = (e as NodeJS.ErrnoException).code;
      if (errno === 'ENOSPC' || errno === 'EDQUOT') throw diskFull(`blob ${digest}: no space left on the storage device`, e);
      throw internal(`blob ${digest}: ${oneLine(e)}`, e);
    }
    faultPoint(`${lease.op}.after-blob`);
  }

  /** Write `src` under a fresh name in the ingest directory, hashed, counted and verified; not yet synced. */
  private async write(expected: string | undefined, size: number | undefined, src: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>, mediaType: string, tap?: (chunk: Buffer) => Promise<void> | void) {
    const what = expected ? `blob ${expected}` : 'a blob';
    if (expected !== undefined && !isDigest(expected)) throw invalid(`bad digest ${JSON.stringify(expected)}: want sha256:<64 hex>`);
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) throw invalid(`${what}: bad size ${size}`);
    const cap = isManifestMedia(mediaType) ? MAX_MANIFEST : Infinity;
    if (size !== undefined && size > cap) throw invalid(`${what}: a ${mediaType} of ${size} bytes is over the ${cap} bytes allowed`);
    const tmp = join(this.tmpDir, randomBytes(8).toString('hex'));
    const fh = await open(tmp, 'wx', 0o600);
    let closed = false;
    const fail = async (e: unknown): Promise<never> => {
      if (!closed) {
        closed = true;
        await fh.close().catch(() => {});
      }
      await rm(tmp, { force: true });
      if (isSiloError(e)) throw e;
      const errno = (e as NodeJS.ErrnoException).code;
      if (errno === 'ENOSPC' || errno === 'EDQUOT') throw diskFull(`${what}: no space left on the storage device`, e);
      if (typeof (e as NodeJS.ErrnoException).syscall === 'string') throw internal(`${what}: ${oneLine(e)}`, e);
      // The source failed (a dropped connection, a malformed outer archive): name the blob, keep the cause.
      throw new SiloError('InvalidArgument', 'SILO_INVALID_ARGUMENT', `${what}: ${oneLine(e)}`, { cause: e });
    };
    const h = createHash('sha256');
    let got = 0;
    let digest: string;
    try {
      // Batched writes go on in the thread pool while the next chunks are hashed and handed to the tap.
      const w = new FileWriter(fh);
      try {
        for await (const v of src) {
          const b = asBuffer(v);
          if (!b.length) continue;
          got += b.length;
          if (size !== undefined && got > size) throw invalid(`${what}: the body is longer than the ${size} bytes announced`);
          if (got > cap) throw invalid(`${what}: a ${mediaType} over ${cap} bytes is refused`);
          h.update(b);
          const tapped = tap?.(b);
          await w.write(b);
          await tapped;
        }
        await w.end();
      } finally {
        await w.settle();
      }
      if (size !== undefined && got < size) throw invalid(`${what}: truncated, ${got} of ${size} bytes arrived`);
      digest = 'sha256:' + h.digest('hex');
      if (expected !== undefined && digest !== expected) throw invalid(`${what}: digest mismatch, the content is ${digest}`);
    } catch (e) {
      return fail(e);
    }
    return { tmp, fh, digest, size: got, fail };
  }

  /** Store a document Silo made (a config or manifest), held for `lease`. */
  async put(lease: Lease, data: Buffer, mediaType: string): Promise<BlobInfo> {
    const digest = sha256(data);
    if (await this.has(digest)) {
      lease.hold(digest);
      // Held now; if a sweep took it between the look and the hold, write it again.
      if (await this.has(digest)) return { digest, size: data.length };
      lease.unhold(digest);
    }
    return this.ingest(lease, digest, data.length, [data], mediaType);
  }
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Blobs one operation (a load, a pull, a commit) holds until its images are written: the sweep leaves held blobs
 * alone. Released at the end, when what the operation's images reference is referenced by them.
 */
export class Lease {
  private readonly mine = new Map<string, number>();

  /** `op` names the operation ('import', 'load', 'pull'...) for its fault points (`<op>.after-blob`). */
  constructor(
    private readonly store: ContentStore,
    readonly op: string,
  ) {}

  hold(digest: string): void {
    this.store.hold(digest);
    this.mine.set(digest, (this.mine.get(digest) ?? 0) + 1);
  }

  unhold(digest: string): void {
    const n = this.mine.get(digest);
    if (!n) return;
    this.store.unhold(digest);
    if (n > 1) this.mine.set(digest, n - 1);
    else this.mine.delete(digest);
  }

  /** Hold `digest` if the store has it; false (and nothing held) if not. */
  async holdIfPresent(digest: string): Promise<boolean> {
    this.hold(digest);
    if (await this.store.has(digest)) return true;
    this.unhold(digest);
    return false;
  }

  /** The digests this lease held. */
  digests(): string[] {
    return [...this.mine.keys()];
  }

  release(): void {
    for (const [d, n] of this.mine) for (let i = 0; i < n; i++) this.store.unhold(d);
    this.mine.clear();
  }
}
