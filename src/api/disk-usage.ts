// What images, containers and volumes take on disk, for both HTTP doors (docker system df, silo system df): one
// reckoning, so the two doors never disagree about what a prune would give back.

import type { ComputeSystemRecord } from '../compute/types.js';
import type { Services } from '../host/services.js';
import { chainIds } from '../storage/digest.js';
import type { Image } from '../storage/types.js';
import type { Volume } from '../storage/volumes.js';
import { volumeUsers } from './volume-users.js';

export interface DiskUsage {
  /** The images' unpacked layers and their blobs (layer tars as they came, configs, manifests). */
  layersSize: number;
  /** `diskSize`: its unpacked layers and its blobs; `sharedSize`: the part of that another image has too;
   *  `containers`: how many containers it is the image of. */
  images: { image: Image; diskSize: number; sharedSize: number; containers: number }[];
  /** `sizeRw`: the container's own changes; `sizeRootFs`: those and its image's layers. */
  containers: { rec: ComputeSystemRecord; sizeRw: number; sizeRootFs: number }[];
  volumes: { volume: Volume; size: number; refCount: number }[];
}

/** A container's own changes (docker's SizeRw) and those with its image's layers (SizeRootFs), bytes; a root that
 *  cannot be read (its container removed meanwhile) counts nothing. */
export async function containerSizes(svc: Services, rec: ComputeSystemRecord, imageSize?: number): Promise<{ sizeRw: number; sizeRootFs: number }> {
  const sizeRw = await svc.compute.changedBytes(rec.Id).catch(() => 0);
  const image = imageSize ?? (await svc.storage.getImage(rec.ImageId).then((i) => i.size, () => 0));
  return { sizeRw, sizeRootFs: sizeRw + image };
}

/** What all images hold on disk: their unpacked layers and their blobs. */
export async function imagesOnDisk(st: Services['storage']): Promise<number> {
  const [layers, blobs] = await Promise.all([st.listLayers(), st.listBlobs()]);
  return layers.reduce((a, l) => a + l.size, 0) + blobs.reduce((a, b) => a + b.size, 0);
}

export async function diskUsage(svc: Services): Promise<DiskUsage> {
  const st = svc.storage;
  const [images, layers, blobs, vols] = await Promise.all([st.listImages(), st.listLayers(), st.listBlobs(), st.listVolumes()]);
  const recs = svc.compute.list(true);
  // What each image holds on disk: its layers (by chain ID) and its blobs (by digest), each with its size. Keyed
  // apart: a lone uncompressed layer's chain ID is its blob's digest too.
  const sizeOf = new Map<string, number>([...layers.map((l) => [`layer ${l.chainId}`, l.size] as const), ...blobs.map((b) => [`blob ${b.digest}`, b.size] as const)]);
  const parts = new Map(images.map((i) => [i.id, [...new Set([...chainIds(i.layers).map((c) => `layer ${c}`), ...(i.blobs ?? []).map((b) => `blob ${b}`)])]]));
  const users = new Map<string, number>();
  for (const keys of parts.values()) for (const k of keys) users.set(k, (users.get(k) ?? 0) + 1);
  const sum = (keys: string[]) => keys.reduce((a, k) => a + (sizeOf.get(k) ?? 0), 0);
  const imageSize = new Map(images.map((i) => [i.id, i.size]));
  return {
    layersSize: [...sizeOf.values()].reduce((a, n) => a + n, 0),
    images: images.map((image) => ({
      image,
      diskSize: sum(parts.get(image.id)!),
      sharedSize: sum(parts.get(image.id)!.filter((k) => users.get(k)! > 1)),
      containers: recs.filter((r) => r.ImageId === image.id).length,
    })),
    containers: await Promise.all(recs.map(async (rec) => ({ rec, ...(await containerSizes(svc, rec, imageSize.get(rec.ImageId) ?? 0)) }))),
    volumes: await Promise.all(vols.map(async (volume) => ({ volume, size: await st.volumeSize(volume.Name), refCount: volumeUsers(recs, st.volumePath(volume.Name)).length }))),
  };
}
