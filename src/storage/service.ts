// The storage service: ties the layer store, image records and container scratches together. Two lock
// scopes: 'meta' guards images + layer publication + garbage collection; 'root:<id>' guards one container's
// root. When both are needed the order is root → meta.

import { conflict, invalid, isSiloError } from '../common/errors.js';
import { shortId } from '../common/ids.js';
import { BASE_CHANGES, BASE_CREATED, BASE_NAME, busyboxTar } from './baseimage.js';
import { applyChanges } from './changes.js';
import { diffTar } from './commit.js';
import { chainIds, hexOf } from './digest.js';
import { ImageStore, imageIdOf, ociArch, type ImageDoc, type OciImageConfig } from './images.js';
import type { ByteSource } from './extract.js';
import type { LayerStore, LooseLayer, PendingLayer } from './layers.js';
import { KeyedLock } from './lock.js';
import { normalizeName } from './reference.js';
import { exportArchive } from './archive-export.js';
import { stageArchive, type LayerSink } from './archive-load.js';
import { faultPoint } from '../common/fault.js';
import { pruneImages, sweepLayers, type PruneOptions, type PruneResult } from './prune.js';
import type { Scratch } from './scratch.js';
import type { HistoryEntry, Image, ImageConfig, ImportOptions, Layer, MountedRoot, StorageService } from './types.js';
import { byCodeUnits } from '../common/order.js';

const META = 'meta';

export class Storage implements StorageService {
  private lock = new KeyedLock();

  constructor(
    private readonly layers: LayerStore,
    private readonly images: ImageStore,
    private readonly scratch: Scratch,
  ) {}

  private async toImage(d: ImageDoc): Promise<Image> {
    let size = 0;
    for (const c of chainIds(d.oci.rootfs.diff_ids)) size += (await this.layers.get(c))?.size ?? 0;
    const o = d.oci;
    return { id: d.id, names: d.names, created: o.created, config: o.config, layers: o.rootfs.diff_ids, history: o.history, size, architecture: o.architecture, os: o.os };
  }

  async ensureBaseImage(): Promise<Image> {
    try {
      return await this.getImage(BASE_NAME);
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
    const pending = await this.layers.ingest(tar);
    const history: HistoryEntry = { created: o.created, created_by: o.createdBy, ...(o.comment ? { comment: o.comment } : {}) };
    return this.publishImage(pending, name, 'import.after-publish', (layer) => ({
      created: o.created,
      architecture: ociArch(),
      os: 'linux',
      config,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [history],
    }));
  }

  /**
   * Publish the layer and write the image record in one critical section, so GC never sees one without the other. A
   * crash between the two (fault point `fault`) leaves a layer nothing refers to, which the sweep at the next open removes.
   */
  private async publishImage(pending: PendingLayer, name: string | undefined, fault: string, build: (l: Layer) => OciImageConfig): Promise<Image> {
    try {
      return await this.lock.with(META, async () => {
        const layer = await this.layers.publish(pending);
        faultPoint(fault);
        const oci = build(layer);
        const id = imageIdOf(oci);
        const doc: ImageDoc = (await this.images.read(id)) ?? { id, names: [], oci };
        if (name) await this.moveName(doc, name);
        else await this.images.write(doc);
        return this.toImage(doc);
      });
    } finally {
      await this.layers.discard(pending); // no-op once published (the dir was renamed away)
    }
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
    return this.lock.with(META, async () => {
      const { doc } = await this.images.resolve(ref);
      await this.moveName(doc, name);
      return this.toImage(doc);
    });
  }

  async removeImage(ref: string, opts: { force?: boolean; inUse?: (imageId: string) => boolean } = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    return this.lock.with(META, async () => {
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

  /** Delete layers no image and no container scratch refers to. Caller holds META. */
  private async gc(): Promise<void> {
    await sweepLayers(this.images, this.layers, this.scratch);
  }

  /**
   * At open: remove the layers an interrupted commit, import, load or collection left published but unreferenced.
   * Run before anything else can hold a layer, so what is unreferenced now is garbage, not a publish in flight.
   */
  async collectGarbage(): Promise<Layer[]> {
    return this.lock.with(META, () => sweepLayers(this.images, this.layers, this.scratch));
  }

  listLayers(): Promise<Layer[]> {
    return this.layers.list();
  }

  async mountRoot(containerId: string, imageId: string, opts: { scratchBytes: number }): Promise<MountedRoot> {
    this.scratch.check(containerId);
    if (!Number.isSafeInteger(opts.scratchBytes) || opts.scratchBytes <= 0) throw invalid('scratchBytes must be a positive integer');
    return this.lock.with(`root:${containerId}`, () =>
      // META too: the layers must not be collected between the lookup and the meta record being written.
      this.lock.with(META, async () => {
        const { doc } = await this.images.resolve(imageId);
        const chain = chainIds(doc.oci.rootfs.diff_ids);
        for (const c of chain) await this.layers.mustGet(c);
        return this.scratch.mount(containerId, { imageId: doc.id, chainIds: chain, scratchBytes: opts.scratchBytes });
      }),
    );
  }

  unmountRoot(containerId: string): Promise<void> {
    this.scratch.check(containerId);
    return this.lock.with(`root:${containerId}`, () => this.scratch.unmount(containerId));
  }

  async removeRoot(containerId: string): Promise<void> {
    this.scratch.check(containerId);
    await this.lock.with(`root:${containerId}`, async () => {
      await this.scratch.remove(containerId);
      await this.lock.with(META, () => this.gc()); // layers kept only for this container can go now
    });
  }

  async commit(containerId: string, imageId: string, opts: { name?: string; config?: ImageConfig; changes?: string[]; comment?: string; author?: string; createdBy?: string }): Promise<Image> {
    this.scratch.check(containerId);
    const name = opts.name === undefined ? undefined : normalizeName(opts.name);
    return this.lock.with(`root:${containerId}`, async () => {
      const meta = await this.scratch.meta(containerId);
      if (!meta) throw invalid(`container ${containerId} has no scratch to commit`);
      const base = (await this.images.read(meta.imageId)) ?? (await this.images.resolve(imageId)).doc;
      if (base.id !== meta.imageId) throw invalid(`container ${containerId} was made from image ${shortId(meta.imageId)}, not ${imageId}`);
      const parent = meta.chainIds[meta.chainIds.length - 1];
      const pending = await this.scratch.withUpper(containerId, async (upper) => this.layers.ingest((await diffTar(upper)) as unknown as ByteSource, parent));
      const created = new Date().toISOString();
      const h: HistoryEntry = { created, created_by: opts.createdBy ?? 'silo commit', ...(opts.comment ? { comment: opts.comment } : {}), ...(opts.author ? { author: opts.author } : {}) };
      return this.publishImage(pending, name, 'commit.after-publish', (layer) => ({
        ...base.oci,
        created,
        ...(opts.author ? { author: opts.author } : {}),
        config: applyChanges({ ...base.oci.config, ...(opts.config ?? {}) }, opts.changes),
        rootfs: { type: 'layers', diff_ids: [...base.oci.rootfs.diff_ids, layer.diffId] },
        history: [...base.oci.history, h],
      }));
    });
  }

  async configureImage(baseRef: string, opts: { config: ImageConfig; createdBy: string; comment?: string }): Promise<Image> {
    return this.lock.with(META, async () => {
      const { doc: base } = await this.images.resolve(baseRef);
      const created = new Date().toISOString();
      const oci: OciImageConfig = {
        ...base.oci,
        created,
        config: opts.config,
        history: [...base.oci.history, { created, created_by: opts.createdBy, empty_layer: true, ...(opts.comment ? { comment: opts.comment } : {}) }],
      };
      const id = imageIdOf(oci);
      const doc: ImageDoc = (await this.images.read(id)) ?? { id, names: [], oci };
      await this.images.write(doc);
      return this.toImage(doc);
    });
  }

  exportImages(refs: string[]): Promise<NodeJS.ReadableStream> {
    return exportArchive(refs, (ref) => this.images.resolve(ref), (chain) => this.layers.mustGet(chain));
  }

  async loadImages(tar: NodeJS.ReadableStream): Promise<{ images: Image[]; names: string[] }> {
    // Layer tars big enough to matter are extracted while the archive streams in (not spooled and read again); those
    // named by a diff ID the store has (moby's layout names uncompressed layers so) are spooled: maybe never needed.
    const have = new Set((await this.layers.list()).map((l) => hexOf(l.diffId)));
    const sink: LayerSink<LooseLayer> = {
      extract: (src) => this.layers.extract(src),
      copy: (l) => this.layers.copy(l),
      discard: (l) => this.layers.discardLoose(l),
      known: (path) => have.has(/^blobs\/sha256\/([a-f0-9]{64})$/.exec(path)?.[1] ?? ''),
    };
    const staged = await stageArchive(tar as unknown as ByteSource, this.layers.ingestDir, sink);
    try {
      const out: Image[] = [];
      const names: string[] = [];
      for (const entry of staged.images) {
        const name = entry.names.map((n) => normalizeName(n));
        // Layers: extract each (bottom first) on top of its parent unless the store has that chain already.
        const pendings: PendingLayer[] = [];
        try {
          const chain = chainIds(entry.config.rootfs.diff_ids);
          for (const [i, diffId] of entry.config.rootfs.diff_ids.entries()) {
            if (await this.layers.get(chain[i])) continue;
            const parent = i ? chain[i - 1] : undefined;
            const loose = staged.take(entry.layers[i]);
            const p = loose ? await this.layers.settle(await loose, parent) : await this.layers.ingest(staged.open(entry.layers[i]) as unknown as ByteSource, parent);
            pendings.push(p);
            if (p.record.diffId !== diffId) throw invalid(`load refused: layer ${i + 1} of ${entry.names[0] ?? 'an image'} has diff ID ${p.record.diffId}, its config says ${diffId}`);
          }
          const img = await this.lock.with(META, async () => {
            for (const p of pendings) await this.layers.publish(p);
            // Killed here: published layers without their image record; the sweep at the next open removes them.
            faultPoint('load.after-publish');
            const oci = entry.config;
            const id = imageIdOf(oci);
            const doc: ImageDoc = (await this.images.read(id)) ?? { id, names: [], oci };
            if (name.length) for (const n of name) await this.moveName(doc, n);
            else await this.images.write(doc);
            return this.toImage(doc);
          });
          out.push(img);
          names.push(...name);
        } finally {
          for (const p of pendings) await this.layers.discard(p);
        }
      }
      return { images: out, names };
    } catch (e) {
      // Layers published for an image that then failed belong to nothing: collect them.
      await this.lock.with(META, () => this.gc()).catch(() => {});
      throw e;
    } finally {
      await staged.cleanup();
    }
  }

  /** Remove dangling (with `all`: unused) images and the layers only they used, under META (prune.ts). */
  pruneImages(o: PruneOptions): Promise<PruneResult> {
    return this.lock.with(META, () => pruneImages(this.images, this.layers, this.scratch, o));
  }

  listRoots(): Promise<string[]> {
    return this.scratch.ids();
  }
}
