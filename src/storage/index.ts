// Entry point of the storage service: `openStorage` prepares the directories, clears debris of interrupted
// imports and unreferenced layers, and returns the StorageService (types.ts).

import type { EventBus } from '../common/events.js';
import { chmod, mkdir } from 'node:fs/promises';
import { ContentStore } from './content.js';
import { DEFAULT_CAPS, type Caps } from './input.js';
import { ImageStore } from './images.js';
import { LayerStore } from './layers.js';
import { Scratch } from './scratch.js';
import { Storage } from './service.js';
import { VolumeStore } from './volumes.js';
import { join } from 'node:path';
import type { StorageService } from './types.js';

export interface StorageOptions extends Partial<Caps> {
  /** State directory for layers, images and scratch images, e.g. /var/lib/silo/storage. */
  root: string;
  /** Run directory for mount points, e.g. /run/silo/storage. */
  runDir: string;
  /** Named volumes' directory; default <root>/volumes. */
  volumes?: string;
  /** Where volume create and destroy are published (the daemon's bus); none in tests that do not listen. */
  events?: EventBus;
}

export async function openStorage(opts: StorageOptions): Promise<StorageService> {
  const caps: Caps = {
    maxLayerBytes: opts.maxLayerBytes ?? DEFAULT_CAPS.maxLayerBytes,
    maxEntries: opts.maxEntries ?? DEFAULT_CAPS.maxEntries,
    maxRatio: opts.maxRatio ?? DEFAULT_CAPS.maxRatio,
    ratioAfterBytes: opts.ratioAfterBytes ?? DEFAULT_CAPS.ratioAfterBytes,
  };
  await mkdir(opts.root, { recursive: true, mode: 0o700 });
  await chmod(opts.root, 0o700);
  const layers = new LayerStore(opts.root, caps);
  const images = new ImageStore(opts.root);
  const scratch = new Scratch(opts.root, opts.runDir, layers.layersDir);
  const content = new ContentStore(opts.root);
  const volumes = new VolumeStore(opts.volumes ?? join(opts.root, 'volumes'));
  await layers.init();
  await images.init();
  await scratch.init();
  await content.init();
  await volumes.init();
  const storage = new Storage(layers, images, scratch, content, volumes, opts.events);
  // A crash between storing blobs or publishing a layer and writing the image record (commit, import, load, pull) or
  // in the middle of a collection leaves blobs and layers nothing refers to; nothing else runs yet, so they are garbage.
  await storage.collectGarbage();
  // Images from before the content store get their blobs in the background (a one-time re-tar of their layers).
  void storage.adoptLegacyImages().catch(() => {});
  return storage;
}

export type { StorageService } from './types.js';
export { normalizeName, familiarName } from './reference.js';
