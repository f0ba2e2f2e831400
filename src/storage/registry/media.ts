// Manifests as registries serve them: media types, parsing with the checks docker applies, and platform selection
// from an index. Pure (no I/O), unit-tested by table.

import { invalid } from '../../common/errors.js';
import { MEDIA } from '../content.js';
import type { Descriptor as BlobDescriptor } from '../manifest.js';

/** The content store's media types, and the ones only a registry serves (schema 1, foreign layers, docker's config). */
export const MT = {
  ...MEDIA,
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociForeign: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociForeignGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociForeignZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
} as const;

/** What Silo asks for, best first (the order docker sends). Schema 1 is left out: a registry then answers schema 2. */
export const MANIFEST_ACCEPT = [MT.dockerManifest, MT.dockerList, MT.ociManifest, MT.ociIndex];

/** Docker refuses manifests over 4 MiB (distribution's own limit): a registry cannot make the daemon buffer more. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** A manifest's descriptor as an index lists it: with the platform it is for. */
export interface Descriptor extends BlobDescriptor {
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export type Compression = 'gzip' | 'zstd' | 'none';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function descriptor(v: unknown, what: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object') throw invalid(`manifest refused: ${what} is not a descriptor`);
  if (typeof d.mediaType !== 'string') throw invalid(`manifest refused: ${what} has no mediaType`);
  if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw invalid(`manifest refused: ${what} has no sha256 digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`manifest refused: ${what} has no valid size`);
  return d as Descriptor;
}

/**
 * Parse a manifest body. `contentType` is the response's Content-Type; the body's own mediaType wins when present
 * (registries send application/json for some OCI documents). Schema 1 is refused in one line, as docker 28 does.
 */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ImageManifest | ImageIndex {
  if (body.length > MAX_MANIFEST_BYTES) throw invalid(`manifest refused: ${body.length} bytes is over the 4 MiB limit`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw invalid('manifest refused: not JSON');
  }
  if (!doc || typeof doc !== 'object') throw invalid('manifest refused: not a JSON object');
  const ct = (contentType ?? '').split(';')[0].trim();
  let mt = typeof doc.mediaType === 'string' ? doc.mediaType : ct;
  if (doc.schemaVersion === 1 || mt === MT.dockerSchema1 || mt === MT.dockerSchema1Signed) {
    throw invalid('image manifest schema 1 is not supported (deprecated by docker): push the image again with a current client');
  }
  if (mt === '' || mt === 'application/json' || mt === 'application/octet-stream') {
    // An OCI document without mediaType: tell manifest and index apart by shape.
    mt = Array.isArray(doc.manifests) ? MT.ociIndex : MT.ociManifest;
  }
  if (mt === MT.dockerList || mt === MT.ociIndex) {
    if (!Array.isArray(doc.manifests)) throw invalid('manifest refused: an index without manifests');
    return { kind: 'index', mediaType: mt, manifests: doc.manifests.map((m, i) => descriptor(m, `entry ${i + 1} of the index`)) };
  }
  if (mt === MT.dockerManifest || mt === MT.ociManifest) {
    const config = descriptor(doc.config, 'the config');
    if (!Array.isArray(doc.layers)) throw invalid('manifest refused: no layers list');
    const layers = doc.layers.map((l, i) => descriptor(l, `layer ${i + 1}`));
    for (const [i, l] of layers.entries()) layerCompression(l, i);
    return { kind: 'manifest', mediaType: mt, config, layers };
  }
  throw invalid(`manifest refused: unsupported media type "${mt}"`);
}

/** How a layer blob is compressed, from its media type. */
export function layerCompression(l: Descriptor, i = 0): Compression {
  switch (l.mediaType) {
    case MT.dockerLayerGzip:
    case MT.dockerForeignGzip:
    case MT.ociLayerGzip:
    case MT.ociForeignGzip:
      return 'gzip';
    case MT.ociLayerZstd:
    case MT.ociForeignZstd:
      return 'zstd';
    case MT.ociLayer:
    case MT.ociForeign:
      return 'none';
    default:
      throw invalid(`manifest refused: layer ${i + 1} has unsupported media type "${l.mediaType}"`);
  }
}

/** A foreign (non-distributable) layer: docker fetches it from its `urls` when the registry does not have it. */
export const isForeign = (l: Descriptor): boolean => /foreign|nondistributable/.test(l.mediaType);

/** The host's platform in OCI terms. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const a = arch[process.arch] ?? process.arch;
  return { os: 'linux', architecture: a, ...(a === 'arm64' ? { variant: 'v8' } : {}) };
}

/** `linux/amd64`, `linux/arm64/v8`, `arm64` → a platform; refused in one line otherwise. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.some((p) => !/^[a-z0-9_.-]+$/.test(p)) || parts.length > 3) throw invalid(`invalid platform "${s}": expected os/arch[/variant]`);
  const [os, architecture, variant] = parts.length === 1 ? ['linux', parts[0]] : parts;
  const arch = architecture === 'x86_64' || architecture === 'x86-64' ? 'amd64' : architecture === 'aarch64' ? 'arm64' : architecture;
  return { os, architecture: arch, ...(variant ? { variant } : {}) };
}

export const formatPlatform = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/**
 * Pick the manifest for `want` from an index, as containerd's matcher does: os and architecture must match; a
 * wanted variant must match (arm64's v8 is its default); without a wanted variant the first entry of that
 * architecture wins. Attestation manifests (platform unknown/unknown) never match.
 */
export function selectPlatform(index: ImageIndex, want: Platform): Descriptor {
  const norm = (p: Platform) => ({ ...p, variant: p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined) });
  const w = norm(want);
  const hits = index.manifests.filter((m) => {
    if (!m.platform || (m.mediaType !== MT.dockerManifest && m.mediaType !== MT.ociManifest)) return false;
    const p = norm(m.platform);
    if (p.os !== w.os || p.architecture !== w.architecture) return false;
    return w.variant === undefined || p.variant === undefined || p.variant === w.variant;
  });
  if (hits.length === 0) {
    const have = index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown').map((m) => formatPlatform(m.platform!));
    throw invalid(`no matching manifest for ${formatPlatform(want)} in the manifest list entries (the image has ${have.join(', ') || 'none'})`);
  }
  // An exact variant beats an entry that names none.
  return hits.find((m) => norm(m.platform!).variant === w.variant) ?? hits[0];
}
