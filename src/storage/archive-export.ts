// docker save: images as one tar in moby 25's layout, which both docker load and OCI tools read:
// blobs/sha256/<hex> (configs, layer tars, OCI manifests), index.json, oci-layout, manifest.json, repositories.
// Layers are kept extracted, so each is re-tarred (commit.ts's diffTar) into a temp file first: a tar header needs
// the size, and the blob name its digest. When a re-tar's digest differs from the recorded diff ID (the original tar
// was ordered differently), the exported config lists the new one, so the archive is self-consistent.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { diffTar } from './commit.js';
import { canonicalJson, chainIds, hexOf, sha256 } from './digest.js';
import type { ImageDoc, OciImageConfig } from './images.js';
import { familiarName } from './reference.js';
import type { Layer } from './types.js';

interface Blob {
  digest: string;
  size: number;
  file?: string;
  data?: Buffer;
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

export async function exportArchive(
  refs: string[],
  resolve: (ref: string) => Promise<{ doc: ImageDoc; byName?: string }>,
  layer: (chainId: string) => Promise<Layer>,
): Promise<NodeJS.ReadableStream> {
  // Resolve every name first, so a typo fails the request before a byte is written.
  const wanted: { doc: ImageDoc; name?: string }[] = [];
  for (const r of refs) {
    const { doc, byName } = await resolve(r);
    wanted.push({ doc, name: byName });
  }
  const tmp = join(layerTmpRoot(await layer(chainIds(wanted[0].doc.oci.rootfs.diff_ids)[0])), `export-${randomBytes(8).toString('hex')}`);
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
      const chain = chainIds(doc.oci.rootfs.diff_ids);
      const layerBlobs: Blob[] = [];
      for (const c of chain) {
        let b = spooled.get(c);
        if (!b) {
          b = await spoolLayer((await layer(c)).path, tmp);
          spooled.set(c, b);
        }
        add(b);
        layerBlobs.push(b);
      }
      const oci: OciImageConfig = { ...doc.oci, rootfs: { type: 'layers', diff_ids: layerBlobs.map((b) => b.digest) } };
      const cfg = jsonBlob(canonicalJson(oci));
      add(cfg);
      const m = jsonBlob({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: cfg.size },
        layers: layerBlobs.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: b.digest, size: b.size })),
      });
      add(m);
      const names = name ? [name] : [];
      const tags = names.map(familiarName);
      manifest.push({ Config: `blobs/sha256/${hexOf(cfg.digest)}`, RepoTags: tags.length ? tags : null, Layers: layerBlobs.map((b) => `blobs/sha256/${hexOf(b.digest)}`) });
      for (const n of names) {
        const at = n.lastIndexOf(':');
        index.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size, annotations: { 'io.containerd.image.name': n, 'org.opencontainers.image.ref.name': n.slice(at + 1) } });
        const fam = familiarName(n);
        const fat = fam.lastIndexOf(':');
        (repositories[fam.slice(0, fat)] ??= {})[fam.slice(fat + 1)] = hexOf(layerBlobs[layerBlobs.length - 1]?.digest ?? '');
      }
      if (!names.length) index.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size });
    }
    const entry = (name: string, body: Buffer) => new Promise<void>((res, rej) => pack.entry({ name, mode: 0o644, mtime: new Date(0) }, body, (e) => (e ? rej(e) : res())));
    for (const b of blobs.values()) {
      const name = `blobs/sha256/${hexOf(b.digest)}`;
      if (b.data) await entry(name, b.data);
      else {
        const size = (await stat(b.file!)).size;
        await new Promise<void>((res, rej) => {
          const w = pack.entry({ name, size, mode: 0o644, mtime: new Date(0) }, (e) => (e ? rej(e) : res()));
          pipeline(createReadStream(b.file!), w).catch(rej);
        });
      }
    }
    await entry('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index })));
    await entry('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await entry('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    if (Object.keys(repositories).length) await entry('repositories', Buffer.from(JSON.stringify(repositories)));
  };
  produce().then(
    () => pack.finalize(),
    (e) => pack.destroy(e as Error),
  );
  const cleanup = () => void rm(tmp, { recursive: true, force: true });
  pack.once('end', cleanup);
  pack.once('close', cleanup);
  pack.once('error', cleanup);
  return pack as unknown as NodeJS.ReadableStream;
}

/** Temp files go beside the layers (the storage root's ingest dir): same filesystem, same 0700 protection. */
function layerTmpRoot(l: Layer): string {
  return join(l.path, '..', '..', '..', 'ingest');
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
