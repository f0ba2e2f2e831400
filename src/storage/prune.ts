// Garbage: `image prune` removes images nothing refers to — dangling ones (no name left), or with `all` every image no
// container uses — and then the layers that no remaining image and no container scratch needs. The caller holds the
// storage service's 'meta' lock, so no import or mount can take a layer between the sweep's look and its delete.

import { faultPoint } from '../common/fault.js';
import { BASE_NAME } from './baseimage.js';
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
  /** Bytes of the removed layers. */
  spaceReclaimed: number;
}

export interface PruneOptions {
  /** Every image no container uses, not only dangling ones. */
  all?: boolean;
  inUse: (imageId: string) => boolean;
}

// The base image is built from the host at the daemon's start and cannot be pulled back: `prune -a` keeps it.
const BASE = normalizeName(BASE_NAME);

export async function pruneImages(images: ImageStore, layers: LayerStore, scratch: Scratch, o: PruneOptions): Promise<PruneResult> {
  const out: PruneResult = { deleted: [], untagged: [], layers: [], spaceReclaimed: 0 };
  for (const doc of await images.all()) {
    if (o.inUse(doc.id) || doc.names.includes(BASE)) continue;
    if (doc.names.length && !o.all) continue;
    await images.delete(doc.id);
    out.deleted.push(doc.id);
    out.untagged.push(...doc.names);
  }
  for (const l of await sweepLayers(images, layers, scratch)) {
    out.layers.push(l.chainId);
    out.spaceReclaimed += l.size;
  }
  return out;
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
