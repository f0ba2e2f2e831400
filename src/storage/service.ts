// The storage service: ties the content store (blobs), the layer store (layers unpacked from them), image records
// and container scratches together. Two lock scopes: 'meta' guards images + layer publication + garbage collection;
// 'root:<id>' guards one container's root. When both are needed the order is root → meta. Blobs are written outside
// the lock, held by a lease (content.ts) until the image record that references them is written.

import { dirname } from 'node:path';
import { normalMountPoint, rootChanges, upperBytes, type RootChange } from './root-diff.js';
import { imageUsage, mountedUsage } from './ext4-usage.js';
import { conflict, internal, invalid, isSiloError } from '../common/errors.js';
import { shortId } from '../common/ids.js';
import type { EventBus } from '../common/events.js';
import { BASE_CHANGES, BASE_CREATED, BASE_NAME, busyboxTar } from './baseimage.js';
import { applyChanges } from './changes.js';
import { diffTar } from './commit.js';
import { canonicalJson, chainIds, sha256 } from './digest.js';
import { ImageStore, ociArch, type ImageDoc, type OciImageConfig } from './images.js';
import type { ByteSource } from './extract.js';
import type { LayerStore, PendingLayer } from './layers.js';
import { KeyedLock } from '../common/lock.js';
import { normalizeName } from './reference.js';
import { exportArchive } from './archive-export.js';
import { stageArchive, type BlobSink } from './archive-load.js';
import { isLayerMedia, Lease, MAX_MANIFEST, MEDIA, type ContentStore } from './content.js';
import { buildManifest, layerMediaType, parseConfig, parseManifest, type Descriptor } from './manifest.js';
import { compressionOf } from './input.js';
import { LoosePool, storeLayer, unpackBlob } from './unpack.js';
import { faultPoint } from '../common/fault.js';
import { pruneImages, sweep, sweepBlobs, type PruneOptions, type PruneResult } from './prune.js';
import type { Scratch } from './scratch.js';
import type { Volume, VolumeStore } from './volumes.js';
import type { BlobInfo, ContentSession, HistoryEntry, Image, ImageConfig, ImportOptions, Layer, RootDescription, StorageService } from './types.js';
import type { LooseLayer } from './layers.js';
import { byCodeUnits } from '../common/order.js';
import { removeFindings, type Finding } from '../common/leaks.js';

const META = 'meta';

/** What an image is made of before its record is written: its layers not yet published, its config and blobs. */
interface NewImage {
  pendings: PendingLayer[];
  oci: OciImageConfig;
  /** The config blob's digest when it is stored as it came (load, pull); else canonical JSON of `oci` is stored. */
  config?: BlobInfo;
  /** The manifest blob's digest when stored as it came; else one is made from `layers`. */
  manifest?: string;
  /** Layer blobs, bottom first; undefined for an image whose base predates the content store (no blobs). */
  layers?: Descriptor[];
  names: string[];
  fault: string;
  /** The image it was made from, for a commit or a configured (build step) image. */
  parent?: string;
}

export class Storage implements StorageService {
  private lock = new KeyedLock();

  constructor(
    private readonly layers: LayerStore,
    private readonly images: ImageStore,
    private readonly scratch: Scratch,
    private readonly content: ContentStore,
    private readonly volumes: VolumeStore,
    private readonly events?: EventBus,
  ) {}

  private async toImage(d: ImageDoc): Promise<Image> {
    let size = 0;
    for (const c of chainIds(d.oci.rootfs.diff_ids)) size += (await this.layers.get(c))?.size ?? 0;
    const o = d.oci;
    return { id: d.id, names: d.names, created: o.created, config: o.config, layers: o.rootfs.diff_ids, history: o.history, size, architecture: o.architecture, os: o.os, ...(d.manifest ? { manifest: d.manifest, blobs: [d.id, d.manifest, ...(d.layerBlobs ?? [])] } : {}), ...(d.parent ? { parent: d.parent } : {}) };
  }

  async ensureBaseImage(): Promise<Image> {
    try {
      const img = await this.getImage(BASE_NAME);
      // Made before the content store: imported again, the same bytes give the same id, now with its blobs.
      if (img.manifest) return img;
    } catch (e) {
      if (!isSiloError(e) || e.class !== 'NotFound') throw e;
    }
    return this.importWith((await busyboxTar()) as unknown as ByteSource, { name: BASE_NAME, changes: BASE_CHANGES, created: BASE_CREATED, createdBy: 'silo base image from /bin/busybox' });
  }

  async listImages(): Promise<Image[]> {
    const docs = await this.images.all();
    docs.sort((a, b) => byCodeUnits(b.oci.created, a.oci.created) || byCodeUnits(a.id, b.id));
    return Promise.all(docs.map((d) => this.toImage(d)));
  }

  async getImage(ref: string): Promise<Image> {
    return this.toImage((await this.images.resolve(ref)).doc);
  }

  importImage(tar: NodeJS.ReadableStream, opts: ImportOptions): Promise<Image> {
    return this.importWith(tar, { ...opts, created: new Date().toISOString(), createdBy: 'silo import' });
  }

  private async importWith(tar: ByteSource, o: ImportOptions & { created: string; createdBy: string }): Promise<Image> {
    // Validate everything cheap before reading a byte of the archive.
    const name = o.name === undefined ? undefined : normalizeName(o.name);
    const config = applyChanges({}, o.changes);
    return this.withLease('import', async (lease) => {
      const { pending, desc } = await this.storeNewLayer(lease, tar);
      const history: HistoryEntry = { created: o.created, created_by: o.createdBy, ...(o.comment ? { comment: o.comment } : {}) };
      const oci: OciImageConfig = { created: o.created, architecture: ociArch(), os: 'linux', config, rootfs: { type: 'layers', diff_ids: [pending.record.diffId] }, history: [history] };
      return this.writeImage(lease, { pendings: [pending], oci, layers: [desc], names: name ? [name] : [], fault: 'import.after-publish' });
    });
  }

  /** Store a layer tar Silo was handed or made as a blob, unpacked in the same pass, placed on `parent`. */
  private async storeNewLayer(lease: Lease, tar: ByteSource, parent?: string): Promise<{ pending: PendingLayer; desc: Descriptor }> {
    const r = await storeLayer(this.content, this.layers, lease, { src: tar, mediaType: MEDIA.ociLayer, unpack: true, strict: true });
    if (!r.prepared || 'error' in r.prepared) throw r.prepared && 'error' in r.prepared ? r.prepared.error : internal('layer not unpacked');
    return { pending: await this.layers.settle(r.prepared.layer, parent), desc: { mediaType: r.mediaType, digest: r.blob.digest, size: r.blob.size } };
  }

  /** Run `fn` with a lease; at the end, blobs the lease held that no image references are deleted. */
  private async withLease<T>(op: string, fn: (lease: Lease) => Promise<T>): Promise<T> {
    const lease = new Lease(this.content, op);
    try {
      return await fn(lease);
    } finally {
      await this.endLease(lease);
    }
  }

  private async endLease(lease: Lease): Promise<void> {
    const mine = lease.digests();
    lease.release();
    if (!mine.length) return;
    const referenced = new Set<string>();
    for (const d of await this.images.all()) for (const b of [d.id, d.manifest, ...(d.layerBlobs ?? [])]) if (b) referenced.add(b);
    if (mine.every((d) => referenced.has(d) || this.content.isHeld(d))) return;
    await this.lock.run(META, () => sweepBlobs(this.images, this.content)).catch(() => {});
  }

  /**
   * Store the config and manifest blobs (unless stored as they came), then publish the layers and write the image
   * record in one critical section, so GC never sees one without the other. A crash between the two (fault point
   * `o.fault`) leaves layers and blobs nothing refers to, which the sweep at the next open removes.
   */
  private async writeImage(lease: Lease, o: NewImage): Promise<Image> {
    try {
      const config = o.config ?? (await this.content.put(lease, Buffer.from(canonicalJson(o.oci)), MEDIA.ociConfig));
      let manifest = o.manifest;
      if (!manifest && o.layers) manifest = (await this.content.put(lease, buildManifest({ mediaType: MEDIA.ociConfig, ...config }, o.layers), MEDIA.ociManifest)).digest;
      return await this.lock.run(META, async () => {
        for (const p of o.pendings) await this.layers.publish(p);
        faultPoint(o.fault);
        const id = config.digest;
        const doc: ImageDoc = (await this.images.read(id)) ?? { id, names: [], oci: o.oci };
        if (o.parent && !doc.parent && o.parent !== id) doc.parent = o.parent;
        if (!doc.manifest && manifest && o.layers) {
          doc.manifest = manifest;
          doc.layerBlobs = o.layers.map((l) => l.digest);
        }
        if (o.names.length) for (const n of o.names) await this.moveName(doc, n);
        else await this.images.write(doc);
        return this.toImage(doc);
      });
    } finally {
      for (const p of o.pendings) await this.layers.discard(p); // no-op once published (the dir was renamed away)
    }
  }

  /**
   * Images recorded before the content store get their blobs: the config as its canonical JSON (its digest is the id)
   * and each layer re-tarred from its unpacked directory — only when every re-tar has the recorded diff ID (Silo's own
   * commits do); otherwise the image stays as it was (saved by re-tarring, under a new id). Returns how many were adopted.
   */
  adoptLegacyImages(): Promise<number> {
    return this.lock.run('adopt', () => this.adoptNow()); // one run at a time: a second one finds nothing left
  }

  private async adoptNow(): Promise<number> {
    let adopted = 0;
    for (const doc of await this.images.all()) {
      if (doc.manifest || sha256(canonicalJson(doc.oci)) !== doc.id) continue;
      const ok = await this.withLease('adopt', async (lease) => {
        const descs: Descriptor[] = [];
        for (const c of chainIds(doc.oci.rootfs.diff_ids)) {
          const l = await this.layers.get(c);
          if (!l) return false;
          const r = await storeLayer(this.content, this.layers, lease, { src: (await diffTar(l.path)) as unknown as ByteSource, mediaType: MEDIA.ociLayer, unpack: false });
          if (r.blob.digest !== l.diffId) return false; // the lease's end deletes the blob
          descs.push({ mediaType: MEDIA.ociLayer, digest: r.blob.digest, size: r.blob.size });
        }
        await this.writeImage(lease, { pendings: [], oci: doc.oci, layers: descs, names: [], fault: 'adopt.after-publish' });
        return true;
      });
      if (ok) adopted++;
    }
    return adopted;
  }

  /** The layer blobs of a stored image, or undefined for one made before the content store. */
  private async layerDescs(doc: ImageDoc): Promise<Descriptor[] | undefined> {
    if (!doc.manifest) return undefined;
    return parseManifest(await this.content.read(doc.manifest, MAX_MANIFEST), `manifest ${doc.manifest}`).layers;
  }

  /** Give `name` to `doc` (written), taking it from whichever image had it. Caller holds META. */
  private async moveName(doc: ImageDoc, name: string): Promise<void> {
    for (const other of await this.images.all()) {
      if (other.id !== doc.id && other.names.includes(name)) {
        other.names = other.names.filter((n) => n !== name);
        await this.images.write(other); // left dangling if that was its last name: listable by id
      }
    }
    if (!doc.names.includes(name)) doc.names = [...doc.names, name];
    await this.images.write(doc);
  }

  async tagImage(ref: string, newName: string): Promise<Image> {
    const name = normalizeName(newName);
    return this.lock.run(META, async () => {
      const { doc } = await this.images.resolve(ref);
      await this.moveName(doc, name);
      return this.toImage(doc);
    });
  }

  async removeImage(ref: string, opts: { force?: boolean; inUse?: (imageId: string) => boolean } = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    return this.lock.run(META, async () => {
      const { doc, byName } = await this.images.resolve(ref);
      if (byName && doc.names.length > 1) {
        doc.names = doc.names.filter((n) => n !== byName);
        await this.images.write(doc);
        return { untagged: [byName], deleted: [] };
      }
      if (!byName && doc.names.length > 1 && !opts.force) {
        throw conflict(`image ${shortId(doc.id)} is referenced by several names (${doc.names.join(', ')}); remove them by name or force`);
      }
      if (opts.inUse?.(doc.id)) {
        if (!opts.force) throw conflict(`image ${shortId(doc.id)} is in use by a container`);
        // Forced while in use: untag, but keep the image (dangling) for the containers made from it.
        const untagged = doc.names;
        doc.names = [];
        await this.images.write(doc);
        return { untagged, deleted: [] };
      }
      await this.images.delete(doc.id);
      await this.gc();
      return { untagged: doc.names, deleted: [doc.id] };
    });
  }

  /** Delete layers no image and no container scratch refers to, and blobs no image references. Caller holds META. */
  private async gc(): Promise<void> {
    await sweep(this.images, this.layers, this.scratch, this.content);
  }

  /**
   * At open: remove the layers and blobs an interrupted commit, import, load, pull or collection left unreferenced.
   * Run before anything else can hold one, so what is unreferenced now is garbage, not a publish in flight.
   */
  async collectGarbage(): Promise<{ layers: Layer[]; blobs: BlobInfo[] }> {
    return this.lock.run(META, () => sweep(this.images, this.layers, this.scratch, this.content));
  }

  listLayers(): Promise<Layer[]> {
    return this.layers.list();
  }

  async describeRoot(containerId: string, imageId: string, opts: { scratchBytes: number; inMemory?: boolean }): Promise<RootDescription> {
    this.scratch.check(containerId);
    if (!Number.isSafeInteger(opts.scratchBytes) || opts.scratchBytes <= 0) throw invalid('scratchBytes must be a positive integer');
    return this.lock.run(`root:${containerId}`, () =>
      // META too: the layers must not be collected between the lookup and the meta record being written.
      this.lock.run(META, async () => {
        const { doc } = await this.images.resolve(imageId);
        const chain = chainIds(doc.oci.rootfs.diff_ids);
        const layers = [];
        for (const c of chain) layers.push({ chainId: c, path: (await this.layers.mustGet(c)).path });
        const scratch = await this.scratch.prepare(containerId, { imageId: doc.id, chainIds: chain, scratchBytes: opts.scratchBytes, ...(opts.inMemory ? { inMemory: true } : {}) });
        // redirect_dir/metacopy off: commit must find whole files and real directories in upper/.
        return { layers, scratch, overlayOptions: ['index=off', 'redirect_dir=off', 'metacopy=off'] };
      }),
    );
  }

  leaks(o: { inUse: (containerId: string) => boolean }): Promise<Finding[]> {
    return this.scratch.leaks(o.inUse);
  }

  fixLeaks(found: Finding[]): Promise<void> {
    return removeFindings(found.filter((f) => f.Owner === 'storage'));
  }

  async removeRoot(containerId: string): Promise<void> {
    this.scratch.check(containerId);
    await this.lock.run(`root:${containerId}`, async () => {
      const meta = await this.scratch.meta(containerId);
      await this.scratch.remove(containerId);
      // A scratch holds layers (never blobs), and they were live through its image too unless that image is gone: only
      // then can this removal leave garbage. A sweep reads every image, layer, scratch and blob, so one per removal cost
      // each `run --rm` ~60 thread-pool calls here and grew with the store. An image removed meanwhile sweeps itself
      // after this scratch is gone, or is found gone here.
      if (!meta || !(await this.images.read(meta.imageId))) await this.lock.run(META, () => this.gc());
    });
  }

  async commit(containerId: string, imageId: string, opts: { name?: string; config?: ImageConfig; changes?: string[]; comment?: string; author?: string; createdBy?: string; upperDir?: string }): Promise<Image> {
    this.scratch.check(containerId);
    const name = opts.name === undefined ? undefined : normalizeName(opts.name);
    return this.lock.run(`root:${containerId}`, async () => {
      const meta = await this.scratch.meta(containerId);
      if (!meta) throw invalid(`container ${containerId} has no scratch to commit`);
      const base = (await this.images.read(meta.imageId)) ?? (await this.images.resolve(imageId)).doc;
      if (base.id !== meta.imageId) throw invalid(`container ${containerId} was made from image ${shortId(meta.imageId)}, not ${imageId}`);
      const parent = meta.chainIds[meta.chainIds.length - 1];
      return this.withLease('commit', async (lease) => {
        const baseLayers = await this.layerDescs(base);
        const store = async (upper: string) => this.storeNewLayer(lease, (await diffTar(upper)) as unknown as ByteSource, parent);
        // A root its backend has mounted is read there; one mounted nowhere, from the scratch image.
        const { pending, desc } = opts.upperDir ? await store(opts.upperDir) : await this.scratch.withUpper(containerId, store);
        const created = new Date().toISOString();
        const h: HistoryEntry = { created, created_by: opts.createdBy ?? 'silo commit', ...(opts.comment ? { comment: opts.comment } : {}), ...(opts.author ? { author: opts.author } : {}) };
        const oci: OciImageConfig = {
          ...base.oci,
          created,
          ...(opts.author ? { author: opts.author } : {}),
          config: applyChanges({ ...base.oci.config, ...(opts.config ?? {}) }, opts.changes),
          rootfs: { type: 'layers', diff_ids: [...base.oci.rootfs.diff_ids, pending.record.diffId] },
          history: [...base.oci.history, h],
        };
        return this.writeImage(lease, { pendings: [pending], oci, layers: baseLayers && [...baseLayers, desc], names: name ? [name] : [], fault: 'commit.after-publish', parent: base.id });
      });
    });
  }

  /** docker diff: the container's changes to its image's files, read where `upperDir` is or from the scratch image. */
  async changes(containerId: string, opts: { upperDir?: string; mountPoints: string[] }): Promise<RootChange[]> {
    this.scratch.check(containerId);
    return this.lock.run(`root:${containerId}`, async () => {
      const meta = await this.scratch.meta(containerId);
      if (!meta) throw invalid(`container ${containerId} has no scratch`);
      const layers: string[] = [];
      for (const c of meta.chainIds) layers.push((await this.layers.mustGet(c)).path);
      const read = (upper: string) => rootChanges(upper, layers, opts.mountPoints.map(normalMountPoint));
      return opts.upperDir ? read(opts.upperDir) : this.scratch.withUpper(containerId, read);
    });
  }

  /** Bytes of the container's changes (docker's SizeRw), read where `upperDir` is or from the scratch image. */
  async scratchBytes(containerId: string, opts: { upperDir?: string } = {}): Promise<number> {
    this.scratch.check(containerId);
    return this.lock.run(`root:${containerId}`, async () => {
      if (!(await this.scratch.meta(containerId))) return 0;
      return opts.upperDir ? upperBytes(opts.upperDir) : this.scratch.unmountedUpperBytes(containerId, upperBytes).catch(() => 0);
    });
  }

  async scratchUsage(containerId: string, opts: { mountedAt?: string } = {}): Promise<{ usedBytes: number; inodesUsed: number } | undefined> {
    this.scratch.check(containerId);
    if (!(await this.scratch.meta(containerId))) return undefined;
    if (opts.mountedAt) return mountedUsage(opts.mountedAt);
    return imageUsage(this.scratch.image(containerId)).catch(() => undefined);
  }

  async configureImage(baseRef: string, opts: { config: ImageConfig; createdBy: string; comment?: string }): Promise<Image> {
    return this.withLease('configure', async (lease) => {
      const { doc: base } = await this.images.resolve(baseRef);
      for (const b of [base.manifest, ...(base.layerBlobs ?? [])]) if (b) lease.hold(b); // the base may be removed meanwhile
      const created = new Date().toISOString();
      const oci: OciImageConfig = {
        ...base.oci,
        created,
        config: opts.config,
        history: [...base.oci.history, { created, created_by: opts.createdBy, empty_layer: true, ...(opts.comment ? { comment: opts.comment } : {}) }],
      };
      return this.writeImage(lease, { pendings: [], oci, layers: await this.layerDescs(base), names: [], fault: 'configure.after-publish', parent: base.id });
    });
  }

  async stepFrom(baseRef: string, sourceRef: string, opts: { config: ImageConfig }): Promise<Image> {
    return this.withLease('step-from', async (lease) => {
      const { doc: base } = await this.images.resolve(baseRef);
      const { doc: src } = await this.images.resolve(sourceRef);
      for (const b of [base.manifest, ...(base.layerBlobs ?? []), src.manifest, ...(src.layerBlobs ?? [])]) if (b) lease.hold(b);
      const bh = base.oci.history;
      const bl = base.oci.rootfs.diff_ids;
      const sl = src.oci.rootfs.diff_ids;
      const entry = src.oci.history[bh.length];
      const follows = entry && bl.every((d, i) => d === sl[i]) && bh.every((h, i) => canonicalJson(h) === canonicalJson(src.oci.history[i]));
      const layer = entry && !entry.empty_layer ? sl[bl.length] : undefined;
      if (!follows || (entry && !entry.empty_layer && !layer)) throw invalid(`image ${shortId(src.id)} does not continue image ${shortId(base.id)}`);
      // The source's layer blob is the step's: same chain, so the layer store already has it unpacked.
      const [bd, sd] = [await this.layerDescs(base), await this.layerDescs(src)];
      const layers = !layer ? bd : bd && sd?.[bl.length] ? [...bd, sd[bl.length]] : undefined;
      const created = entry.created ?? new Date().toISOString();
      const oci: OciImageConfig = {
        ...base.oci,
        created,
        config: opts.config,
        rootfs: { type: 'layers', diff_ids: layer ? [...bl, layer] : bl },
        history: [...bh, entry],
      };
      return this.writeImage(lease, { pendings: [], oci, layers, names: [], fault: 'step-from.after-publish', parent: base.id });
    });
  }

  exportImages(refs: string[], opts: { format?: 'docker' | 'oci' } = {}): Promise<NodeJS.ReadableStream> {
    // The images' blobs are held until the archive is written: an rmi meanwhile must not take them from under it.
    const lease = new Lease(this.content, 'save');
    return exportArchive(refs, {
      resolve: (ref) =>
        this.lock.run(META, async () => {
          const r = await this.images.resolve(ref);
          for (const b of [r.doc.id, r.doc.manifest, ...(r.doc.layerBlobs ?? [])]) if (b && r.doc.manifest) lease.hold(b);
          return r;
        }),
      layer: (chain) => this.layers.mustGet(chain),
      content: this.content,
      tmpRoot: this.layers.ingestDir,
      format: opts.format,
      done: () => void this.endLease(lease),
    }).catch((e) => {
      void this.endLease(lease);
      throw e;
    });
  }

  async loadImages(tar: NodeJS.ReadableStream): Promise<{ images: Image[]; names: string[] }> {
    // Blobs go into the content store as the archive streams in; layer tars big enough to matter are unpacked along
    // (not spooled and read again), unless the store has that blob, or that layer unpacked (by diff ID) already.
    const have = new Set((await this.layers.list()).map((l) => l.diffId));
    return this.withLease('load', async (lease) => {
      const pool = new LoosePool(this.layers);
      const sink: BlobSink<LooseLayer> = {
        present: (d) => lease.holdIfPresent(d),
        store: async (expected, src, unpack) => {
          // Deferred: a blob's fsync and rename go on while the archive's next member streams in.
          const r = await storeLayer(this.content, this.layers, lease, { expected, src, mediaType: unpack ? MEDIA.ociLayer : 'application/octet-stream', unpack, defer: true });
          return { digest: r.blob.digest, committed: r.committed, ...(r.prepared ? { prepared: r.prepared } : {}) };
        },
        read: (d) => this.content.read(d),
        discard: (l) => this.layers.discardLoose(l),
        known: (d) => have.has(d),
      };
      const staged = await stageArchive(tar as unknown as ByteSource, this.layers.ingestDir, sink);
      for (const [d, p] of staged.prepared) pool.put(d, p);
      staged.prepared.clear();
      try {
        const out: Image[] = [];
        const names: string[] = [];
        const entries = [];
        for (const entry of staged.images) {
          const name = entry.names.map((n) => normalizeName(n));
          const layers = [];
          for (const p of entry.layers) layers.push(await staged.blob(p));
          for (const d of layers) pool.expect(d);
          entries.push({ entry, name, layers });
        }
        for (const { entry, name, layers } of entries) {
          const what = entry.names[0] ?? 'an image';
          await staged.json(entry.config); // refused by its archive path when it is not JSON
          const config = await staged.blob(entry.config);
          let manifest = entry.manifest === undefined ? undefined : await staged.blob(entry.manifest);
          if (manifest === undefined) {
            // A docker-archive without the image's manifest (docker < 25): make one of the blobs as they came.
            const descs: Descriptor[] = [];
            for (const d of layers) descs.push({ mediaType: await this.sniffLayerMedia(d), digest: d, size: await this.content.size(d) });
            const cfg = { mediaType: MEDIA.ociConfig, digest: config, size: await this.content.size(config) };
            manifest = (await this.content.put(lease, buildManifest(cfg, descs), MEDIA.ociManifest)).digest;
          }
          out.push(await this.createFrom(lease, manifest, name, pool, 'load.after-publish', `load refused: ${what}`));
          names.push(...name);
        }
        return { images: out, names };
      } catch (e) {
        // Layers published for an image that then failed belong to nothing: collect them.
        await this.lock.run(META, () => this.gc()).catch(() => {});
        throw e;
      } finally {
        await pool.discardAll();
        await staged.cleanup();
      }
    });
  }

  /** The OCI media type of a stored layer blob, from its first bytes. */
  private async sniffLayerMedia(digest: string): Promise<string> {
    const s = await this.content.open(digest);
    let head = Buffer.alloc(0);
    for await (const c of s as AsyncIterable<Buffer>) {
      head = Buffer.concat([head, c]);
      if (head.length >= 4) break;
    }
    (s as unknown as { destroy(): void }).destroy();
    return layerMediaType(compressionOf(head));
  }

  /**
   * The image of a stored manifest: its config and layer blobs must be stored; layers the store has not unpacked are
   * taken from `pool` (unpacked as they arrived) or unpacked from their blobs, each checked against the config's diff
   * IDs; then the record is written (writeImage). `what` starts every refusal.
   */
  private async createFrom(lease: Lease, manifestDigest: string, names: string[], pool: LoosePool | undefined, fault: string, what: string): Promise<Image> {
    const need = async (d: string, role: string) => {
      if (!(await lease.holdIfPresent(d))) throw invalid(`${what}: the ${role} blob ${d} is not in the content store`);
    };
    await need(manifestDigest, 'manifest');
    const m = parseManifest(await this.content.read(manifestDigest, MAX_MANIFEST).catch((e) => Promise.reject(isSiloError(e) ? invalid(`${what}: ${e.message}`) : e)), `${what}: manifest ${manifestDigest}`);
    await need(m.config.digest, 'config');
    const configBytes = await this.content.read(m.config.digest);
    const oci = parseConfig(configBytes, m.layers.length, `${what}: config ${m.config.digest}`);
    for (const l of m.layers) {
      if (!isLayerMedia(l.mediaType)) throw invalid(`${what}: layer ${l.digest} has media type ${l.mediaType}, not a layer's`);
      await need(l.digest, 'layer');
    }
    const diffIds = oci.rootfs.diff_ids;
    const chain = chainIds(diffIds);
    const pendings: PendingLayer[] = [];
    try {
      for (const [i, l] of m.layers.entries()) {
        if (await this.layers.get(chain[i])) continue;
        const loose = (await pool?.take(l.digest)) ?? (await unpackBlob(this.content, this.layers, l.digest));
        const p = await this.layers.settle(loose, i ? chain[i - 1] : undefined);
        pendings.push(p);
        if (p.record.diffId !== diffIds[i]) throw invalid(`${what}: layer ${i + 1} (${l.digest}) has diff ID ${p.record.diffId}, its config says ${diffIds[i]}`);
      }
    } catch (e) {
      for (const p of pendings) await this.layers.discard(p);
      throw e;
    }
    return this.writeImage(lease, { pendings, oci, config: { digest: m.config.digest, size: configBytes.length }, manifest: manifestDigest, layers: m.layers, names, fault });
  }

  openContent(): ContentSession {
    const lease = new Lease(this.content, 'pull');
    const pool = new LoosePool(this.layers);
    let closed = false;
    const live = () => {
      if (closed) throw invalid('the content session is closed');
    };
    return {
      has: async (d) => (live(), lease.holdIfPresent(d)),
      size: async (d) => (live(), this.content.size(d)),
      open: async (d) => {
        live();
        lease.hold(d);
        return this.content.open(d);
      },
      ingest: async (expected, size, stream, mediaType) => {
        live();
        if (typeof expected !== 'string') throw invalid('ingest needs the expected digest');
        const r = await storeLayer(this.content, this.layers, lease, { expected, size, src: stream, mediaType, unpack: isLayerMedia(mediaType) });
        if (r.prepared) pool.put(r.blob.digest, r.prepared);
        return r.blob;
      },
      spoolPlace: { root: dirname(this.layers.ingestDir), caps: this.layers.caps },
      adopt: async (s) => {
        live();
        const ours = s.layer && dirname(s.layer.dir) === this.layers.ingestDir;
        try {
          if (s.layer && !ours) throw internal(`layer of blob ${s.digest}: not unpacked in this store`);
          await this.content.adopt(lease, s.tmp, s.digest);
        } catch (e) {
          if (ours) await this.layers.discardLoose(s.layer!);
          throw e;
        }
        if (s.layer) pool.put(s.digest, { layer: s.layer });
        else if (s.refused !== undefined) pool.put(s.digest, { error: s.refused });
        return { digest: s.digest, size: s.size };
      },
      createImage: async (o) => {
        live();
        const names = (o.names ?? []).map((n) => normalizeName(n));
        return this.createFrom(lease, o.manifest, names, pool, 'pull.after-publish', `image of manifest ${o.manifest}`);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        await pool.discardAll();
        await this.endLease(lease);
      },
    };
  }

  async close(): Promise<void> {
    await this.lock.run('adopt', async () => {}); // behind a run in progress
    await this.scratch.pool.idle();
  }

  async listBlobs(): Promise<BlobInfo[]> {
    return this.content.list();
  }

  listVolumes(): Promise<Volume[]> {
    return this.volumes.listVolumes();
  }

  getVolume(name: string): Promise<Volume> {
    return this.volumes.getVolume(name);
  }

  volumeSubpath(name: string, subpath: string): Promise<string> {
    return this.volumes.volumeSubpath(name, subpath);
  }

  createVolume(name: string, o?: { labels?: Record<string, string>; options?: Record<string, string> }): Promise<Volume> {
    return this.lock.run(`volume:${name}`, async () => {
      // Under the volume's lock: whether it existed is still true when it is made.
      const existed = await this.volumes.getVolume(name).then(() => true, () => false);
      const v = await this.volumes.createVolume(name, o);
      if (!existed) this.events?.publish('volume', 'create', name, { driver: 'local' });
      return v;
    });
  }

  removeVolume(name: string, o?: { inUseBy?: string[] }): Promise<void> {
    return this.lock.run(`volume:${name}`, async () => {
      await this.volumes.removeVolume(name, o);
      this.events?.publish('volume', 'destroy', name, { driver: 'local' });
    });
  }

  volumeAt(hostPath: string): string | undefined {
    return this.volumes.volumeAt(hostPath);
  }

  volumePath(name: string): string {
    return this.volumes.volumePath(name);
  }

  volumeSize(name: string): Promise<number> {
    return this.volumes.volumeSize(name);
  }

  /** Remove dangling (with `all`: unused) images and the layers only they used, under META (prune.ts). */
  pruneImages(o: PruneOptions): Promise<PruneResult> {
    return this.lock.run(META, () => pruneImages(this.images, this.layers, this.scratch, this.content, o));
  }

  listRoots(): Promise<string[]> {
    return this.scratch.ids();
  }
}
