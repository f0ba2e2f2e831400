// Garbage: `image prune` removes images nothing refers to — dangling ones (no name left), or with `all` every image no
// container uses — and then the layers that no remaining image and no container scratch needs, and the blobs no
// remaining image references. The caller holds the storage service's 'meta' lock, so no import or mount can take a
// layer between the sweep's look and its delete.

import { faultPoint } from '../common/fault.js';
import { BASE_NAME } from './baseimage.js';
import type { BlobInfo, ContentStore } from './content.js';
import { chainIds } from './digest.js';
import type { ImageStore } from './images.js';
import type { LayerStore } from './layers.js';
import { normalizeName } from './reference.js';
import type { Scratch } from './scratch.js';
import type { Layer } from './types.js';

export interface PruneResult {
  /** Ids of the images removed. */
  deleted: string[];
  /** Names those images had (only with `all`: a dangling image has none). */
  untagged: string[];
  /** Chain ids of the layers removed. */
  layers: string[];
  /** Digests of the blobs removed. */
  blobs: string[];
  /** Bytes of the removed layers and blobs. */
  spaceReclaimed: number;
}

export interface PruneOptions {
  /** Every image no container uses, not only dangling ones. */
  all?: boolean;
  inUse: (imageId: string) => boolean;
}

// The base image is built from the host at the daemon's start and cannot be pulled back: `prune -a` keeps it.
const BASE = normalizeName(BASE_NAME);

export async function pruneImages(images: ImageStore, layers: LayerStore, scratch: Scratch, content: ContentStore, o: PruneOptions): Promise<PruneResult> {
  const out: PruneResult = { deleted: [], untagged: [], layers: [], blobs: [], spaceReclaimed: 0 };
  for (const doc of await images.all()) {
    if (o.inUse(doc.id) || doc.names.includes(BASE)) continue;
    if (doc.names.length && !o.all) continue;
    await images.delete(doc.id);
    out.deleted.push(doc.id);
    out.untagged.push(...doc.names);
  }
  const swept = await sweep(images, layers, scratch, content);
  for (const l of swept.layers) {
    out.layers.push(l.chainId);
    out.spaceReclaimed += l.size;
  }
  for (const b of swept.blobs) {
    out.blobs.push(b.digest);
    out.spaceReclaimed += b.size;
  }
  return out;
}

/** Layers and blobs nothing needs any more (sweepLayers, then sweepBlobs). Caller holds the 'meta' lock. */
export async function sweep(images: ImageStore, layers: LayerStore, scratch: Scratch, content: ContentStore): Promise<{ layers: Layer[]; blobs: BlobInfo[] }> {
  return { layers: await sweepLayers(images, layers, scratch), blobs: await sweepBlobs(images, content) };
}

/**
 * Delete every blob that no image (its config, manifest and layer blobs) references and no operation in flight holds
 * (a load or pull whose image record is not written yet). Caller holds the storage service's 'meta' lock.
 */
export async function sweepBlobs(images: ImageStore, content: ContentStore): Promise<BlobInfo[]> {
  const live = new Set<string>();
  for (const d of await images.all()) {
    live.add(d.id);
    if (d.manifest) live.add(d.manifest);
    for (const b of d.layerBlobs ?? []) live.add(b);
  }
  const removed: BlobInfo[] = [];
  for (const b of await content.list()) {
    if (live.has(b.digest) || content.isHeld(b.digest)) continue;
    await content.remove(b.digest);
    removed.push(b);
  }
  return removed;
}

/**
 * Delete every layer that no image (its rootfs diff_ids → chain IDs) and no container root (its meta's chainIds)
 * refers to; returns what went. The one collector: image removal, prune, failed loads and the sweep at open (which
 * finds layers left by a crash between publishing and the image record, or mid-collection) all use it.
 * Caller holds the storage service's 'meta' lock.
 */
export async function sweepLayers(images: ImageStore, layers: LayerStore, scratch: Scratch): Promise<Layer[]> {
  const live = new Set<string>();
  for (const d of await images.all()) for (const c of chainIds(d.oci.rootfs.diff_ids)) live.add(c);
  for (const m of await scratch.allMeta()) for (const c of m.chainIds) live.add(c);
  const removed: Layer[] = [];
  for (const l of await layers.list()) {
    if (live.has(l.chainId)) continue;
    // A crash here leaves image records gone but their layers still published: the sweep at the next open takes them.
    faultPoint('gc.before-layer-delete');
    await layers.remove(l.chainId);
    removed.push(l);
  }
  return removed;
}
