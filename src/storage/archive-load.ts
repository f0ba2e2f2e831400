// docker load: stage an image archive (docker-archive with manifest.json, legacy or moby-25 layout, or an OCI
// image layout with index.json; plain or gzip'd), then describe the images it holds. The manifest usually comes
// last, so a member that looks like a layer (a tar or gzip of at least STREAM_MIN bytes) is extracted into the layer
// store's ingest/ as it streams in, with the same safe extraction, caps and diff ID as an import; a refusal is kept
// and reported only if the manifest uses that layer. Everything else is spooled into a private temp dir.
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
import { exhausted, internal, invalid } from '../common/errors.js';
import { feedTar, type ByteSource } from './extract.js';
import type { OciImageConfig } from './images.js';
import { asBuffer, GUNZIP_CHUNK } from './input.js';
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

/** Where layer tars go as they stream in (the layer store's ingest/), so they are not written to disk twice. */
export interface LayerSink<T> {
  /** Extract a layer tar (or tar.gz); throws a refusal as the import of that tar would. */
  extract(src: ByteSource): Promise<T>;
  /** A second, independent copy, for an archive that uses one layer tar at two places. */
  copy(layer: T): Promise<T>;
  discard(layer: T): Promise<void>;
  /** True for archive paths whose layer the store has already: they are kept as files (maybe never extracted). */
  known?(path: string): boolean;
}

export interface Staged<T = never> {
  images: StagedImage[];
  /**
   * The layer at archive path `p` if it was extracted as the archive streamed in (each call gets a layer of its own;
   * a refusal of that layer is thrown here), or undefined: then `open` it.
   */
  take(path: string): Promise<T> | undefined;
  open(path: string): NodeJS.ReadableStream;
  cleanup(): Promise<void>;
}

/** Entries at least this large that look like a tar or gzip are extracted as they stream in; smaller ones are spooled. */
const STREAM_MIN = 1024 * 1024;
/** Read size for spooled files. */
const READ_CHUNK = 1024 * 1024;

/** Does this start of a file look like a layer: gzip, or a tar header with a valid checksum? */
function looksLikeLayer(head: Buffer): boolean {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (head.length < 512) return false;
  const field = head.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += head[i];
  return parseInt(field, 8) === sum;
}

/** The bytes of `src`, gunzipped if they start with gzip's magic; xz and zstd are refused. Buffers are not copied. */
async function* gunzipIfNeeded(src: ByteSource): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let done = false;
  while (head.length < 6 && !done) {
    const r = await it.next();
    if (r.done) done = true;
    else head = head.length ? Buffer.concat([head, asBuffer(r.value)]) : asBuffer(r.value);
  }
  if (head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') throw invalid('load refused: xz-compressed archives are not supported; decompress it first');
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) throw invalid('load refused: zstd-compressed archives are not supported; decompress it first');
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    while (!done) {
      const r = await it.next();
      if (r.done) break;
      yield asBuffer(r.value);
    }
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gz = createGunzip({ chunkSize: GUNZIP_CHUNK });
    const r = Readable.from(rest());
    r.on('error', (e) => gz.destroy(e));
    r.pipe(gz);
    yield* gz as AsyncIterable<Buffer>;
  } else yield* rest();
}

type Entry = AsyncIterable<Uint8Array> & { header: tar.Header; resume(): void };
type Prepared<T> = { layer: T; uses: number; taken: boolean } | { error: unknown };

/**
 * Read the first `n` bytes of an entry, then hand out the whole entry as a source that a consumer may abandon
 * at any point: whatever it leaves is drained (never destroyed, which would end the outer archive) by `finish`.
 */
async function peekEntry(entry: Entry, n: number): Promise<{ head: Buffer; source: AsyncGenerator<Buffer>; finish(): Promise<void> }> {
  const it = entry[Symbol.asyncIterator]();
  const heads: Buffer[] = [];
  let got = 0;
  let ended = false;
  while (got < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const b = asBuffer(r.value);
    heads.push(b);
    got += b.length;
  }
  async function* source(): AsyncGenerator<Buffer> {
    try {
      yield* heads;
      while (!ended) {
        const r = await it.next();
        if (r.done) ended = true;
        else yield asBuffer(r.value);
      }
    } finally {
      while (!ended) if ((await it.next()).done) ended = true;
    }
  }
  const gen = source();
  return {
    head: heads.length === 1 ? heads[0] : Buffer.concat(heads),
    source: gen,
    async finish() {
      await gen.return(undefined);
      while (!ended) if ((await it.next()).done) ended = true;
    },
  };
}

export async function stageArchive<T = never>(input: ByteSource, tmpRoot: string, sink?: LayerSink<T>): Promise<Staged<T>> {
  const dir = join(tmpRoot, `load-${randomBytes(8).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  const files = new Map<string, string>(); // archive path → staged file
  const prepared = new Map<string, Prepared<T>>(); // archive path → layer extracted from it, or why it was refused
  const links = new Map<string, string>(); // archive path → archive path it points to
  const cleanup = async () => {
    for (const p of prepared.values()) if ('layer' in p && !p.taken) await sink!.discard(p.layer);
    prepared.clear();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const extract = tar.extract();
    const feeding = feedTar(gunzipIfNeeded(input), extract);
    try {
      let n = 0;
      let total = 0;
      for await (const entry of extract as unknown as AsyncIterable<Entry>) {
        const h = entry.header;
        if (++n > MAX_ENTRIES) throw exhausted(`load refused: more than ${MAX_ENTRIES} entries`);
        const name = cleanEntryPath(h.name, 'archive entry');
        if (h.type === 'file' || h.type === 'contiguous-file') {
          const size = h.size ?? 0;
          total += size;
          if (total > MAX_TOTAL) throw exhausted(`load refused: archive larger than ${MAX_TOTAL} bytes`);
          // A later entry of the same name replaces an earlier one.
          files.delete(name);
          const earlier = prepared.get(name);
          prepared.delete(name);
          if (earlier && 'layer' in earlier) await sink!.discard(earlier.layer);
          if (sink && size >= STREAM_MIN && !sink.known?.(name)) {
            const e = await peekEntry(entry, 512);
            if (looksLikeLayer(e.head)) {
              // Extracted now; whether the manifest uses it (and a refusal matters) is known only at the end.
              let p: Prepared<T>;
              try {
                p = { layer: await sink.extract(e.source), uses: 0, taken: false };
              } catch (error) {
                p = { error };
              }
              await e.finish();
              prepared.set(name, p);
              continue;
            }
            await spool(e.source, join(dir, String(n)));
          } else await spool(entry, join(dir, String(n)));
          files.set(name, join(dir, String(n)));
        } else {
          if (h.type === 'symlink' && h.linkname) links.set(name, cleanEntryPath(posix.join(posix.dirname(name), h.linkname), 'archive symlink'));
          entry.resume();
        }
      }
    } finally {
      // Not awaited: after a refusal the client may never send another byte; the feeder stops at its next chunk.
      extract.destroy();
      void feeding;
    }
    /** The archive path `p` names, through the archive's symlinks, or undefined. */
    const find = (p: string, depth = 0): string | undefined => {
      const clean = cleanEntryPath(p, 'archive reference');
      if (files.has(clean) || prepared.has(clean)) return clean;
      const l = links.get(clean);
      return l !== undefined && depth < 8 ? find(l, depth + 1) : undefined;
    };
    const resolve = (p: string): string => {
      const f = find(p);
      if (f === undefined) throw invalid(`load refused: the archive names ${JSON.stringify(p)} but does not contain it`);
      return f;
    };
    const json = async (p: string): Promise<any> => {
      const f = files.get(resolve(p));
      if (f === undefined) throw invalid(`load refused: ${p} is not valid JSON`); // it is a tar: it was extracted
      const buf = await readFile(f);
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
    // How often each extracted layer is used; a missing one matters only if the store lacks it (the caller's call).
    for (const img of images) {
      for (const l of img.layers) {
        let f: string | undefined;
        try {
          f = find(l);
        } catch {
          continue; // a bad name: refused when (if) the layer is needed
        }
        const p = f === undefined ? undefined : prepared.get(f);
        if (p && 'layer' in p) p.uses++;
      }
    }
    return {
      images,
      take(path) {
        const p = prepared.get(resolve(path));
        if (!p) return undefined;
        if ('error' in p) return Promise.reject(p.error);
        if (p.taken) return Promise.reject(internal(`layer ${path} of the archive was used more often than the manifests say`));
        // The last use gets the extracted layer itself, earlier ones a copy of it.
        if (--p.uses > 0) return sink!.copy(p.layer);
        p.taken = true;
        return Promise.resolve(p.layer);
      },
      open: (p) => {
        const f = files.get(resolve(p));
        if (f === undefined) throw internal(`layer ${p} of the archive was extracted as it streamed in; take it`);
        return createReadStream(f, { highWaterMark: READ_CHUNK });
      },
      cleanup,
    };
  } catch (e) {
    await cleanup();
    if (e instanceof Error && !('class' in e)) throw invalid(`load refused: not a valid image archive: ${e.message}`);
    throw e;
  }
}

/** Write an archive member to a new file of our own. */
async function spool(src: AsyncIterable<Uint8Array>, path: string): Promise<void> {
  await pipeline(Readable.from(src, { objectMode: false }), createWriteStream(path, { mode: 0o600, flags: 'wx', highWaterMark: READ_CHUNK }));
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
