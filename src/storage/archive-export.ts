// docker save: images as one tar in moby 25's layout, which both docker load and OCI tools read:
// blobs/sha256/<hex> (configs, layer tars, OCI manifests), index.json, oci-layout, manifest.json, repositories.
// An image's blobs are written as the content store keeps them (the layer tars as they came, the config and manifest
// byte for byte), so a load gives back the same image id, manifest and layer digests. An image made before the content
// store has no blobs: its layers are re-tarred (commit.ts's diffTar) into temp files — a tar header needs the size,
// and the blob name its digest — and when a re-tar's digest differs from the recorded diff ID, the exported config
// lists the new one (so the archive is self-consistent, and that image gets a new id when loaded).

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { diffTar } from './commit.js';
import { MAX_MANIFEST, MEDIA, type ContentStore } from './content.js';
import { canonicalJson, chainIds, hexOf, sha256 } from './digest.js';
import type { ImageDoc, OciImageConfig } from './images.js';
import { parseManifest } from './manifest.js';
import { familiarName } from './reference.js';
import type { Layer } from './types.js';

interface Blob {
  digest: string;
  size: number;
  file?: string;
  data?: Buffer;
  /** Stored in the content store. */
  stored?: boolean;
}

export interface ExportSources {
  resolve: (ref: string) => Promise<{ doc: ImageDoc; byName?: string }>;
  layer: (chainId: string) => Promise<Layer>;
  content: ContentStore;
  /** Where re-tarred layers of images without blobs are spooled. */
  tmpRoot: string;
  /** Called once when the archive is written or abandoned. */
  done?: () => void;
  /** 'oci': an OCI image layout only (no docker manifest.json or repositories). Default: both, as moby 25 writes. */
  format?: 'docker' | 'oci';
}

async function spoolLayer(path: string, tmp: string): Promise<Blob> {
  const file = join(tmp, randomBytes(8).toString('hex'));
  const h = createHash('sha256');
  let size = 0;
  const pack = await diffTar(path);
  const out = createWriteStream(file, { mode: 0o600 });
  const hashed = new Transform({
    transform(b: Buffer, _enc, cb) {
      h.update(b);
      size += b.length;
      cb(null, b);
    },
  });
  await pipeline(pack as unknown as NodeJS.ReadableStream, hashed, out);
  return { digest: 'sha256:' + h.digest('hex'), size, file };
}

const jsonBlob = (v: unknown): Blob => {
  const data = Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  return { digest: sha256(data), size: data.length, data };
};

export async function exportArchive(refs: string[], src: ExportSources): Promise<NodeJS.ReadableStream> {
  const { layer, content } = src;
  // Resolve every name first, so a typo fails the request before a byte is written.
  const wanted: { doc: ImageDoc; name?: string }[] = [];
  for (const r of refs) {
    const { doc, byName } = await src.resolve(r);
    wanted.push({ doc, name: byName });
  }
  const tmp = join(src.tmpRoot, `export-${randomBytes(8).toString('hex')}`);
  await mkdir(tmp, { mode: 0o700 });
  const pack = tar.pack();
  const blobs = new Map<string, Blob>();
  const add = (b: Blob) => blobs.set(b.digest, b);
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const index: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const spooled = new Map<string, Blob>(); // by chain id
  const produce = async () => {
    for (const { doc, name } of uniq(wanted)) {
      let layerBlobs: Blob[] = [];
      let cfg: Blob;
      let m: Blob;
      if (doc.manifest) {
        // Stored blobs, as they are.
        const bytes = await content.read(doc.manifest, MAX_MANIFEST);
        const parsed = parseManifest(bytes, `manifest ${doc.manifest}`);
        m = { digest: doc.manifest, size: bytes.length, data: bytes };
        cfg = { digest: parsed.config.digest, size: await content.size(parsed.config.digest), stored: true };
        layerBlobs = [];
        for (const l of parsed.layers) layerBlobs.push({ digest: l.digest, size: await content.size(l.digest), stored: true });
      } else {
        for (const c of chainIds(doc.oci.rootfs.diff_ids)) {
          let b = spooled.get(c);
          if (!b) {
            b = await spoolLayer((await layer(c)).path, tmp);
            spooled.set(c, b);
          }
          layerBlobs.push(b);
        }
        const oci: OciImageConfig = { ...doc.oci, rootfs: { type: 'layers', diff_ids: layerBlobs.map((b) => b.digest) } };
        cfg = jsonBlob(canonicalJson(oci));
        m = jsonBlob({
          schemaVersion: 2,
          mediaType: MEDIA.ociManifest,
          config: { mediaType: MEDIA.ociConfig, digest: cfg.digest, size: cfg.size },
          layers: layerBlobs.map((b) => ({ mediaType: MEDIA.ociLayer, digest: b.digest, size: b.size })),
        });
      }
      for (const b of [...layerBlobs, cfg, m]) add(b);
      const names = name ? [name] : [];
      const tags = names.map(familiarName);
      manifest.push({ Config: `blobs/sha256/${hexOf(cfg.digest)}`, RepoTags: tags.length ? tags : null, Layers: layerBlobs.map((b) => `blobs/sha256/${hexOf(b.digest)}`) });
      for (const n of names) {
        const at = n.lastIndexOf(':');
        index.push({ mediaType: MEDIA.ociManifest, digest: m.digest, size: m.size, annotations: { 'io.containerd.image.name': n, 'org.opencontainers.image.ref.name': n.slice(at + 1) } });
        const fam = familiarName(n);
        const fat = fam.lastIndexOf(':');
        (repositories[fam.slice(0, fat)] ??= {})[fam.slice(fat + 1)] = hexOf(layerBlobs[layerBlobs.length - 1]?.digest ?? '');
      }
      if (!names.length) index.push({ mediaType: MEDIA.ociManifest, digest: m.digest, size: m.size });
    }
    const entry = (name: string, body: Buffer) => new Promise<void>((res, rej) => pack.entry({ name, mode: 0o644, mtime: new Date(0) }, body, (e) => (e ? rej(e) : res())));
    for (const b of blobs.values()) {
      const name = `blobs/sha256/${hexOf(b.digest)}`;
      if (b.data) await entry(name, b.data);
      else {
        const size = b.stored ? b.size : (await stat(b.file!)).size;
        const body = b.stored ? await content.open(b.digest) : createReadStream(b.file!);
        await new Promise<void>((res, rej) => {
          const w = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, (e) => (e ? rej(e) : res()));
          pipeline(body, w).catch(rej);
        });
      }
    }
    await entry('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index })));
    if (src.format !== 'oci') await entry('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await entry('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    if (src.format !== 'oci' && Object.keys(repositories).length) await entry('repositories', Buffer.from(JSON.stringify(repositories)));
  };
  produce().then(
    () => pack.finalize(),
    (e) => pack.destroy(e as Error),
  );
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    void rm(tmp, { recursive: true, force: true });
    src.done?.();
  };
  pack.once('end', cleanup);
  pack.once('close', cleanup);
  pack.once('error', cleanup);
  return pack as unknown as NodeJS.ReadableStream;
}

function uniq<T extends { doc: ImageDoc; name?: string }>(xs: T[]): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    const k = `${x.doc.id} ${x.name ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
