// docker load: stage an image archive (docker-archive with manifest.json, legacy or moby-25 layout, or an OCI
// image layout with index.json; plain or gzip'd) into a private temp dir, then describe the images it holds.
// The outer tar is hostile input: entry names are normalised and may not climb out, only regular files and
// in-archive symlinks (the legacy format links duplicate layer.tar files) are kept, sizes and counts are capped,
// and every file is written under a fresh name of our own, never under the archive's.

import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { exhausted, invalid } from '../common/errors.js';
import type { ByteSource } from './extract.js';
import type { OciImageConfig } from './images.js';
import { cleanEntryPath } from './paths.js';

const MAX_ENTRIES = 100_000;
const MAX_TOTAL = 64 * 1024 ** 3;
const MAX_JSON = 16 * 1024 * 1024;

export interface StagedImage {
  names: string[];
  config: OciImageConfig;
  /** Archive paths of the layer tars, bottom first. */
  layers: string[];
}

export interface Staged {
  images: StagedImage[];
  open(path: string): NodeJS.ReadableStream;
  cleanup(): Promise<void>;
}

async function* gunzipIfNeeded(src: ByteSource): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 6 && !done) {
    const r = await it.next();
    if (r.done) done = true;
    else head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  if (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') throw invalid('load refused: xz-compressed archives are not supported; decompress it first');
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) throw invalid('load refused: zstd-compressed archives are not supported; decompress it first');
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    while (!done) {
      const r = await it.next();
      if (r.done) break;
      yield Buffer.from(r.value);
    }
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gz = createGunzip();
    const r = Readable.from(rest());
    r.on('error', (e) => gz.destroy(e));
    r.pipe(gz);
    yield* gz as AsyncIterable<Buffer>;
  } else yield* rest();
}

export async function stageArchive(input: ByteSource, tmpRoot: string): Promise<Staged> {
  const dir = join(tmpRoot, `load-${randomBytes(8).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  const files = new Map<string, string>(); // archive path → staged file
  const links = new Map<string, string>(); // archive path → archive path it points to
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const extract = tar.extract();
    const src = Readable.from(gunzipIfNeeded(input));
    src.on('error', (e) => extract.destroy(e));
    src.pipe(extract);
    let n = 0;
    let total = 0;
    for await (const entry of extract as unknown as AsyncIterable<AsyncIterable<Uint8Array> & { header: tar.Header; resume(): void }>) {
      const h = entry.header;
      if (++n > MAX_ENTRIES) throw exhausted(`load refused: more than ${MAX_ENTRIES} entries`);
      const name = cleanEntryPath(h.name, 'archive entry');
      if (h.type === 'file' || h.type === 'contiguous-file') {
        total += h.size ?? 0;
        if (total > MAX_TOTAL) throw exhausted(`load refused: archive larger than ${MAX_TOTAL} bytes`);
        const f = join(dir, String(files.size));
        await pipeline(entry as unknown as NodeJS.ReadableStream, createWriteStream(f, { mode: 0o600, flags: 'wx' }));
        files.set(name, f);
      } else {
        if (h.type === 'symlink' && h.linkname) links.set(name, cleanEntryPath(posix.join(posix.dirname(name), h.linkname), 'archive symlink'));
        entry.resume();
      }
    }
    const file = (p: string, depth = 0): string => {
      const clean = cleanEntryPath(p, 'archive reference');
      const f = files.get(clean);
      if (f) return f;
      const l = links.get(clean);
      if (l !== undefined && depth < 8) return file(l, depth + 1);
      throw invalid(`load refused: the archive names ${JSON.stringify(p)} but does not contain it`);
    };
    const json = async (p: string): Promise<any> => {
      const buf = await readFile(file(p));
      if (buf.length > MAX_JSON) throw invalid(`load refused: ${p} is too large for a JSON document`);
      try {
        return JSON.parse(buf.toString('utf8'));
      } catch {
        throw invalid(`load refused: ${p} is not valid JSON`);
      }
    };
    let images: StagedImage[];
    if (files.has('manifest.json')) images = await dockerArchive(await json('manifest.json'), json);
    else if (files.has('index.json')) images = await ociLayout(await json('index.json'), json);
    else throw invalid('load refused: neither manifest.json nor index.json found: not a docker-archive or OCI image layout');
    if (!images.length) throw invalid('load refused: the archive holds no images');
    return { images, open: (p) => createReadStream(file(p)), cleanup };
  } catch (e) {
    await cleanup();
    if (e instanceof Error && !('class' in e)) throw invalid(`load refused: not a valid image archive: ${e.message}`);
    throw e;
  }
}

function checkConfig(c: any, layers: number, where: string): OciImageConfig {
  const ids = c?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d: unknown) => typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d))) throw invalid(`load refused: ${where} has no valid rootfs.diff_ids`);
  if (ids.length !== layers) throw invalid(`load refused: ${where} lists ${ids.length} diff IDs but the manifest ${layers} layers`);
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

async function dockerArchive(manifest: unknown, json: (p: string) => Promise<any>): Promise<StagedImage[]> {
  if (!Array.isArray(manifest)) throw invalid('load refused: manifest.json is not a list');
  const out: StagedImage[] = [];
  for (const m of manifest as any[]) {
    if (typeof m?.Config !== 'string' || !Array.isArray(m.Layers)) throw invalid('load refused: a manifest.json entry lacks Config or Layers');
    const layers = m.Layers.map(String);
    out.push({ names: Array.isArray(m.RepoTags) ? m.RepoTags.map(String) : [], config: checkConfig(await json(m.Config), layers.length, m.Config), layers });
  }
  return out;
}

const blobPath = (digest: unknown): string => {
  if (typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest)) throw invalid(`load refused: bad digest ${JSON.stringify(digest)}`);
  return `blobs/sha256/${digest.slice(7)}`;
};

async function ociLayout(index: any, json: (p: string) => Promise<any>, depth = 0): Promise<StagedImage[]> {
  if (!Array.isArray(index?.manifests)) throw invalid('load refused: index.json has no manifests');
  const out: StagedImage[] = [];
  for (const d of index.manifests as any[]) {
    const doc = await json(blobPath(d.digest));
    if (Array.isArray(doc?.manifests)) {
      if (depth > 2) throw invalid('load refused: image indexes nested too deep');
      const kids = await ociLayout(doc, json, depth + 1);
      const linux = kids.filter((k) => k.config.os === 'linux');
      const pick = linux.find((k) => k.config.architecture === hostArch()) ?? linux[0];
      if (pick) out.push({ ...pick, names: [...pick.names, ...refName(d)] });
      continue;
    }
    if (!Array.isArray(doc?.layers)) throw invalid(`load refused: manifest ${d.digest} has no layers`);
    for (const l of doc.layers) if (String(l.mediaType ?? '').includes('zstd')) throw invalid('load refused: zstd-compressed layers are not supported');
    const layers = doc.layers.map((l: any) => blobPath(l.digest));
    out.push({ names: refName(d), config: checkConfig(await json(blobPath(doc.config?.digest)), layers.length, `config of ${d.digest}`), layers });
  }
  return out;
}

/** A full reference from the descriptor's annotations; a bare tag in ref.name is no name on its own. */
function refName(d: any): string[] {
  const a = d?.annotations ?? {};
  const full = a['io.containerd.image.name'];
  if (typeof full === 'string' && full) return [full];
  const ref = a['org.opencontainers.image.ref.name'];
  return typeof ref === 'string' && /[/:]/.test(ref) ? [ref] : [];
}

const hostArch = () => ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
