// Image manifests (OCI image manifest and Docker v2 schema 2, which have the same shape) and configs as the content
// store keeps them: parsed from stored blobs with every field Silo relies on checked, and made for local images.

import { invalid } from '../common/errors.js';
import { isDigest } from './digest.js';
import { MEDIA } from './content.js';
import type { OciImageConfig } from './images.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

function descriptor(d: any, where: string): Descriptor {
  if (!d || typeof d !== 'object') throw invalid(`${where}: not a descriptor`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw invalid(`${where}: bad digest ${JSON.stringify(d.digest)} (Silo keeps sha256 blobs)`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where}: bad size ${JSON.stringify(d.size)}`);
  if (typeof d.mediaType !== 'string' || !d.mediaType) throw invalid(`${where}: no mediaType`);
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(Array.isArray(d.urls) ? { urls: d.urls.map(String) } : {}),
    ...(d.annotations && typeof d.annotations === 'object' ? { annotations: d.annotations } : {}),
  };
}

/** Parse an image manifest blob; an index, a schema 1 manifest or anything malformed is refused with one line. */
export function parseManifest(bytes: Buffer, where: string): ImageManifest {
  let m: any;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(`${where} is not valid JSON`);
  }
  if (m?.schemaVersion === 1) throw invalid(`${where} is a Docker schema 1 manifest, which Silo does not support`);
  if (Array.isArray(m?.manifests)) throw invalid(`${where} is an image index, not an image manifest`);
  if (m?.schemaVersion !== 2 || !Array.isArray(m.layers)) throw invalid(`${where} is not an image manifest (schemaVersion 2 with layers)`);
  const mediaType = typeof m.mediaType === 'string' ? m.mediaType : MEDIA.ociManifest;
  return {
    mediaType,
    config: descriptor(m.config, `${where} config`),
    layers: (m.layers as unknown[]).map((l, i) => descriptor(l, `${where} layer ${i + 1}`)),
  };
}

/** The OCI manifest Silo writes for an image it made (import, commit, build) or loaded without one. */
export function buildManifest(config: Descriptor, layers: Descriptor[]): Buffer {
  const strip = (d: Descriptor) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: strip(config), layers: layers.map(strip) }));
}

/** The OCI layer media type for a compression. */
export const layerMediaType = (kind: 'gzip' | 'zstd' | 'none'): string =>
  kind === 'gzip' ? MEDIA.ociLayerGzip : kind === 'zstd' ? MEDIA.ociLayerZstd : MEDIA.ociLayer;

/** Parse and check an image configuration; `layers` is how many layers the manifest lists. */
export function parseConfig(bytes: Buffer, layers: number, where: string): OciImageConfig {
  let c: any;
  try {
    c = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid(`${where} is not valid JSON`);
  }
  return checkConfig(c, layers, where);
}

export function checkConfig(c: any, layers: number, where: string): OciImageConfig {
  const ids = c?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d: unknown) => typeof d === 'string' && isDigest(d))) throw invalid(`${where} has no valid rootfs.diff_ids`);
  if (ids.length !== layers) throw invalid(`${where} lists ${ids.length} diff IDs but the manifest ${layers} layers`);
  return {
    created: typeof c.created === 'string' ? c.created : new Date(0).toISOString(),
    ...(typeof c.author === 'string' && c.author ? { author: c.author } : {}),
    architecture: String(c.architecture ?? 'amd64'),
    os: String(c.os ?? 'linux'),
    config: c.config && typeof c.config === 'object' ? c.config : {},
    rootfs: { type: 'layers', diff_ids: ids },
    history: Array.isArray(c.history) ? c.history : [],
  };
}
