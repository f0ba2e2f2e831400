// docker load: stage an image archive (docker-archive with manifest.json, legacy or moby-25 layout, or an OCI
// image layout with index.json; plain or gzip'd), then describe the images it holds. Members named by a digest
// (blobs/sha256/<hex>) go into the content store as they stream in, verified against their name, or are skipped
// when the store has them; a member that looks like a layer (a tar or gzip of at least STREAM_MIN bytes) is also
// unpacked as it streams in, with the same safe extraction, caps and diff ID as an import — a refusal is kept and
// reported only if the manifest uses that layer. Other members (manifest.json, legacy <id>/layer.tar) are spooled
// into a private temp dir and stored as blobs only when an image uses them.
// The outer tar is hostile input: entry names are normalised and may not climb out, only regular files and
// in-archive symlinks (the legacy format links duplicate layer.tar files) are kept, sizes and counts are capped,
// and every spooled file is written under a fresh name of our own, never under the archive's.

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
import { feedTar, type ByteSource } from './extract.js';
import { asBuffer, compressionOf, GUNZIP_CHUNK } from './input.js';
import { cleanEntryPath } from './paths.js';

const MAX_ENTRIES = 100_000;
const MAX_TOTAL = 64 * 1024 ** 3;
const MAX_JSON = 16 * 1024 * 1024;

export interface StagedImage {
  names: string[];
  /** Archive path of the image configuration. */
  config: string;
  /** Archive paths of the layer tars, bottom first. */
  layers: string[];
  /** Archive path of the image's manifest, when the archive has one (OCI layout, moby 25's docker-archive). */
  manifest?: string;
}

/** A prepared (unpacked as it streamed in) layer, or why it was refused. */
export type Prepared<T> = { layer: T } | { error: unknown };

/** Where the archive's members go: the content store, and the layer store for layers unpacked as they arrive. */
export interface BlobSink<T> {
  /** Hold the blob if the store has it (the archive's copy is then skipped); false if it does not. */
  present(digest: string): Promise<boolean>;
  /**
   * Store a member as a blob, verified against `expected` when given; with `unpack`, also unpack it as it streams
   * (an unpack refusal is returned in `prepared`, not thrown: it matters only if an image uses the layer).
   */
  store(expected: string | undefined, src: AsyncIterable<Buffer>, unpack: boolean): Promise<{ digest: string; prepared?: Prepared<T>; committed?: Promise<void> }>;
  /** A stored blob's bytes (a JSON document). */
  read(digest: string): Promise<Buffer>;
  discard(layer: T): Promise<void>;
  /** True for a blob whose layer the store has unpacked already (by diff ID): it is stored, not unpacked along. */
  known?(digest: string): boolean;
}

export interface Staged<T> {
  images: StagedImage[];
  /** The digest of the member at archive path `p`, stored in the content store (a spooled member is stored now). */
  blob(p: string): Promise<string>;
  /** The member at `p` parsed as JSON. */
  json(p: string): Promise<any>;
  /** Layers unpacked as the archive streamed in, by blob digest: the caller owns (and discards) them. */
  prepared: Map<string, Prepared<T>>;
  cleanup(): Promise<void>;
}

/** Entries at least this large that look like a tar or gzip are extracted as they stream in; smaller ones are spooled. */
const STREAM_MIN = 1024 * 1024;
/** Read size for spooled files. */
const READ_CHUNK = 1024 * 1024;

/** Does this start of a file look like a layer: gzip, zstd, or a tar header with a valid checksum? */
function looksLikeLayer(head: Buffer): boolean {
  if (compressionOf(head) !== 'none') return true;
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

const digestOfPath = (p: string): string | undefined => {
  const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(p);
  return m ? 'sha256:' + m[1] : undefined;
};

export async function stageArchive<T>(input: ByteSource, tmpRoot: string, sink: BlobSink<T>): Promise<Staged<T>> {
  const dir = join(tmpRoot, `load-${randomBytes(8).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  const members = new Map<string, { file: string } | { digest: string }>(); // archive path → spooled file or blob
  const prepared = new Map<string, Prepared<T>>(); // blob digest → layer unpacked from it, or why it was refused
  const links = new Map<string, string>(); // archive path → archive path it points to
  const commits: Promise<void>[] = []; // blobs written and verified, their fsync and rename still going on
  const cleanup = async () => {
    await Promise.allSettled(commits);
    for (const p of prepared.values()) if ('layer' in p) await sink.discard(p.layer);
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
          members.delete(name);
          const named = digestOfPath(name);
          if (named && (await sink.present(named))) {
            entry.resume();
            members.set(name, { digest: named });
            continue;
          }
          const e = await peekEntry(entry, 512);
          const layer = size >= STREAM_MIN && looksLikeLayer(e.head);
          if (named || layer) {
            try {
              const unpack = layer && !(named && sink.known?.(named)) && !(named && prepared.has(named));
              const r = await sink.store(named, e.source, unpack);
              if (r.committed) commits.push(r.committed);
              if (r.prepared) {
                const earlier = prepared.get(r.digest);
                if (earlier && 'layer' in earlier) await sink.discard(earlier.layer);
                prepared.set(r.digest, r.prepared);
              }
              members.set(name, { digest: r.digest });
            } finally {
              await e.finish();
            }
            continue;
          }
          await spool(e.source, join(dir, String(n)));
          members.set(name, { file: join(dir, String(n)) });
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
    await Promise.all(commits);
    /** The archive path `p` names, through the archive's symlinks, or undefined. */
    const find = (p: string, depth = 0): string | undefined => {
      const clean = cleanEntryPath(p, 'archive reference');
      if (members.has(clean)) return clean;
      const l = links.get(clean);
      return l !== undefined && depth < 8 ? find(l, depth + 1) : undefined;
    };
    const resolve = (p: string): string => {
      const f = find(p);
      if (f === undefined) throw invalid(`load refused: the archive names ${JSON.stringify(p)} but does not contain it`);
      return f;
    };
    const json = async (p: string): Promise<any> => {
      const m = members.get(resolve(p))!;
      let buf: Buffer;
      if ('file' in m) {
        buf = await readFile(m.file);
        if (buf.length > MAX_JSON) throw invalid(`load refused: ${p} is too large for a JSON document`);
      } else buf = await sink.read(m.digest).catch(() => Promise.reject(invalid(`load refused: ${p} is too large for a JSON document`)));
      try {
        return JSON.parse(buf.toString('utf8'));
      } catch {
        throw invalid(`load refused: ${p} is not valid JSON`);
      }
    };
    const blob = async (p: string): Promise<string> => {
      const f = resolve(p);
      const m = members.get(f)!;
      if ('digest' in m) return m.digest;
      const r = await sink.store(undefined, createReadStream(m.file, { highWaterMark: READ_CHUNK }) as AsyncIterable<Buffer>, false);
      await r.committed;
      members.set(f, { digest: r.digest });
      return r.digest;
    };
    let images: StagedImage[];
    if (members.has('manifest.json')) images = await dockerArchive(await json('manifest.json'), members.has('index.json') ? await json('index.json').catch(() => undefined) : undefined, json);
    else if (members.has('index.json')) images = await ociLayout(await json('index.json'), json);
    else throw invalid('load refused: neither manifest.json nor index.json found: not a docker-archive or OCI image layout');
    if (!images.length) throw invalid('load refused: the archive holds no images');
    return { images, blob, json, prepared, cleanup };
  } catch (e) {
    await cleanup();
    // A member cut off or failing mid-stream is the outer archive's fault: the content store names it as a blob's.
    const cause = e instanceof Error && 'class' in e && e.cause instanceof Error && !('class' in e.cause) ? e.cause : e;
    if (cause instanceof Error && !('class' in cause)) throw invalid(`load refused: not a valid image archive: ${cause.message}`);
    throw e;
  }
}

/** Write an archive member to a new file of our own. */
async function spool(src: AsyncIterable<Uint8Array>, path: string): Promise<void> {
  await pipeline(Readable.from(src, { objectMode: false }), createWriteStream(path, { mode: 0o600, flags: 'wx', highWaterMark: READ_CHUNK }));
}

async function dockerArchive(manifest: unknown, index: any, json: (p: string) => Promise<any>): Promise<StagedImage[]> {
  if (!Array.isArray(manifest)) throw invalid('load refused: manifest.json is not a list');
  // moby 25 writes the OCI manifest of each image too (index.json): use it, so the manifest digest survives.
  const manifests = new Map<string, string>(); // "config layer layer..." blob paths → manifest path
  for (const d of Array.isArray(index?.manifests) ? (index.manifests as any[]) : []) {
    try {
      const path = blobPath(d.digest);
      const m = await json(path);
      if (!Array.isArray(m?.layers)) continue;
      manifests.set([m.config?.digest, ...m.layers.map((l: any) => l.digest)].map(blobPath).join(' '), path);
    } catch {
      // Not a usable manifest: the image is described by manifest.json alone.
    }
  }
  const out: StagedImage[] = [];
  for (const m of manifest as any[]) {
    if (typeof m?.Config !== 'string' || !Array.isArray(m.Layers)) throw invalid('load refused: a manifest.json entry lacks Config or Layers');
    const layers: string[] = m.Layers.map((l: unknown) => cleanEntryPath(String(l), 'archive reference'));
    const config = cleanEntryPath(m.Config, 'archive reference');
    const mp = manifests.get([config, ...layers].join(' '));
    out.push({ names: Array.isArray(m.RepoTags) ? m.RepoTags.map(String) : [], config, layers, ...(mp ? { manifest: mp } : {}) });
  }
  return out;
}

const blobPath = (digest: unknown): string => {
  if (typeof digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(digest)) throw invalid(`load refused: bad digest ${JSON.stringify(digest)}`);
  return `blobs/sha256/${digest.slice(7)}`;
};

async function ociLayout(index: any, json: (p: string) => Promise<any>, depth = 0): Promise<(StagedImage & { platform?: { os: string; architecture: string } })[]> {
  if (!Array.isArray(index?.manifests)) throw invalid('load refused: index.json has no manifests');
  const out: (StagedImage & { platform?: { os: string; architecture: string } })[] = [];
  for (const d of index.manifests as any[]) {
    const path = blobPath(d.digest);
    const doc = await json(path);
    if (Array.isArray(doc?.manifests)) {
      if (depth > 2) throw invalid('load refused: image indexes nested too deep');
      const kids = await ociLayout(doc, json, depth + 1);
      const linux = kids.filter((k) => (k.platform?.os ?? 'linux') === 'linux');
      const pick = linux.find((k) => k.platform?.architecture === hostArch()) ?? linux[0];
      if (pick) out.push({ ...pick, names: [...pick.names, ...refName(d)] });
      continue;
    }
    if (!Array.isArray(doc?.layers)) throw invalid(`load refused: manifest ${d.digest} has no layers`);
    const p = d.platform && typeof d.platform === 'object' ? { os: String(d.platform.os ?? 'linux'), architecture: String(d.platform.architecture ?? '') } : undefined;
    out.push({ names: refName(d), config: blobPath(doc.config?.digest), layers: doc.layers.map((l: any) => blobPath(l.digest)), manifest: path, ...(p ? { platform: p } : {}) });
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
