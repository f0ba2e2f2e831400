// Images made by the tests and pushed with Silo's own registry client: layer tars built here (gzip, zstd or plain),
// an OCI/Docker config, a manifest, and a multi-platform index.

import { createHash } from 'node:crypto';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import * as tar from 'tar-stream';
import type { RepoClient } from '../../src/storage/registry/client.js';
import { MT, type Descriptor } from '../../src/storage/registry/media.js';

export const digestOf = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** A layer tar with the given files (path → content), in memory. */
export async function layerTar(files: Record<string, string | Buffer | { link: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === 'object' && !Buffer.isBuffer(content)) {
      pack.entry({ name, type: 'symlink', linkname: content.link, mode: 0o777, mtime: new Date(1_700_000_000_000) });
      continue;
    }
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    pack.entry({ name, size: body.length, mode: 0o755, mtime: new Date(1_700_000_000_000) }, body);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A layer with the host's static busybox as /bin/busybox and /bin/sh, so images made here can run. */
export async function busyboxLayer(): Promise<Buffer> {
  return layerTar({ 'bin/busybox': readFileSync('/bin/busybox'), 'bin/sh': { link: 'busybox' }, 'bin/cat': { link: 'busybox' }, 'bin/echo': { link: 'busybox' } });
}

export interface BuiltLayer {
  blob: Buffer;
  desc: Descriptor;
  diffId: string;
}

export function compress(t: Buffer, how: 'gzip' | 'zstd' | 'none', oci: boolean): BuiltLayer {
  const blob = how === 'gzip' ? gzipSync(t) : how === 'zstd' ? zstdCompressSync(t) : t;
  const mediaType = how === 'gzip' ? (oci ? MT.ociLayerGzip : MT.dockerLayerGzip) : how === 'zstd' ? MT.ociLayerZstd : MT.ociLayer;
  return { blob, desc: { mediaType, digest: digestOf(blob), size: blob.length }, diffId: digestOf(t) };
}

export interface BuiltImage {
  config: Buffer;
  configDesc: Descriptor;
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  layers: BuiltLayer[];
}

export function image(layers: BuiltLayer[], o: { arch?: string; cmd?: string[]; oci?: boolean; env?: string[] } = {}): BuiltImage {
  const oci = o.oci ?? false;
  const cfg = {
    architecture: o.arch ?? 'amd64',
    os: 'linux',
    created: '2026-01-01T00:00:00Z',
    config: { Cmd: o.cmd ?? ['/bin/sh'], Env: o.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '2026-01-01T00:00:00Z', created_by: 'silo test' })),
  };
  const config = Buffer.from(JSON.stringify(cfg));
  const configDesc = { mediaType: oci ? MT.ociConfig : MT.dockerConfig, digest: digestOf(config), size: config.length };
  const mediaType = oci ? MT.ociManifest : MT.dockerManifest;
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: configDesc, layers: layers.map((l) => l.desc) }, null, 3));
  return { config, configDesc, manifest, manifestDigest: digestOf(manifest), mediaType, layers };
}

export async function pushBlob(c: RepoClient, desc: Descriptor, blob: Buffer): Promise<void> {
  if (await c.hasBlob(desc.digest)) return;
  const u = await c.startUpload(desc.digest);
  if (!u.mounted) await c.putBlob(u.location, desc, blob);
}

/** Push an image's blobs and its manifest under `tag` (or only by digest when tag is undefined). */
export async function pushImage(c: RepoClient, img: BuiltImage, tag?: string): Promise<void> {
  for (const l of img.layers) await pushBlob(c, l.desc, l.blob);
  await pushBlob(c, img.configDesc, img.config);
  await c.putManifest(tag ?? img.manifestDigest, img.manifest, img.mediaType);
}

/** Push several images and an index of them under `tag`. */
export async function pushIndex(c: RepoClient, imgs: { img: BuiltImage; platform: { os: string; architecture: string; variant?: string } }[], tag: string, oci = true): Promise<string> {
  for (const { img } of imgs) await pushImage(c, img);
  const mediaType = oci ? MT.ociIndex : MT.dockerList;
  const body = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, manifests: imgs.map(({ img, platform }) => ({ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, platform })) }),
  );
  return c.putManifest(tag, body, mediaType);
}
