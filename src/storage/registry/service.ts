// Pull and push over the Distribution API on the content store, login and logout. A pull resolves the reference
// on the first endpoint (mirrors first) that has it, stores the manifest, the config and every layer blob (three
// downloads at a time, each unpacked as it streams in, verified by the store), then makes the image from the stored
// manifest; the session holds what it brought until the image record references it, so an interrupted pull keeps
// nothing. A push sends the stored blobs the image's manifest names (HEAD first, a cross-repository mount when the
// blob came from another repository of the same registry), then the manifest itself: a pull back gives the same digests.

import { join } from 'node:path';
import { readJson, writeJsonAtomic } from '../../common/atomic.js';
import { invalid, isSiloError } from '../../common/errors.js';
import { KeyedLock } from '../../common/lock.js';
import { faultPoint } from '../../common/fault.js';
import { familiarName, formatReference, parseReference, type Reference } from '../reference.js';
import type { ContentSession, Image } from '../types.js';
import { RepoClient, Transport } from './client.js';
import type { ProgressSink } from './progress.js';
import { CredentialStore, registryKey, type Credentials } from './credentials.js';
import { RegistryHosts, type Endpoint } from './hosts.js';
import { hostPlatform, isForeign, parseManifest, selectPlatform, formatPlatform, type Descriptor, type ImageManifest, type Platform } from './media.js';
import { runLimited } from './pool.js';
import { counted } from './verify.js';
import { FetchPool, revive } from './fetchers.js';
import { isLayerMedia } from '../content.js';

export interface RegistryOptions {
  /** Directory of the registry client's own state: credentials (0600) and blob sources. */
  stateDir: string;
  hosts: RegistryHosts;
  timeoutMs: number;
  maxConcurrentDownloads?: number;
  maxConcurrentUploads?: number;
  /** Worker threads the layer downloads share (SILO_PULL_WORKERS; 1 by default). */
  downloadWorkers?: number;
  /** Download layers on the daemon's own thread instead of in worker threads (SILO_PULL_IN_PROCESS=1, for comparison). */
  inProcess?: boolean;
  /** Blobs larger than this are pushed in chunks of this size; smaller ones in one PUT. */
  chunkBytes?: number;
  openContent: () => ContentSession;
  getImage: (ref: string) => Promise<Image>;
  userAgent: string;
}

export interface PullOptions {
  platform?: Platform;
  /** Credentials for this request (X-Registry-Auth, CRI auth); otherwise those `silo login` saved. */
  auth?: Credentials;
  progress?: ProgressSink;
}

const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);
const NOTE_BYTES = 512 * 1024;
const NOTE_MS = 100;

/** Which error of several endpoints to report: what the registry said beats a connection failure. */
function rank(e: unknown): number {
  if (!isSiloError(e)) return 0;
  return e.class === 'Unavailable' ? 1 : 2;
}

export class RegistryService {
  private readonly t: Transport;
  readonly credentials: CredentialStore;
  private readonly sourcesFile: string;
  private readonly lock = new KeyedLock();
  private readonly fetchers: FetchPool;

  constructor(private readonly o: RegistryOptions) {
    this.t = new Transport({ timeoutMs: o.timeoutMs, userAgent: o.userAgent });
    this.fetchers = new FetchPool(o.downloadWorkers ?? 1);
    this.credentials = new CredentialStore(join(o.stateDir, 'auth.json'));
    this.sourcesFile = join(o.stateDir, 'sources.json');
  }

  async close(): Promise<void> {
    await this.fetchers.close();
    await this.t.close();
  }

  private async credsFor(ep: Endpoint, ref: Reference, given?: Credentials): Promise<Credentials | undefined> {
    if (given && (given.username || given.password || given.identityToken)) return given;
    // A mirror has its own credentials; the registry's own endpoint uses the registry name's.
    return this.credentials.get(ep.mirror ? ep.host : ref.domain);
  }

  private async client(ep: Endpoint, ref: Reference, actions: ('pull' | 'push')[], given?: Credentials): Promise<RepoClient> {
    return new RepoClient(this.t, ep, ref.path, actions, await this.credsFor(ep, ref, given));
  }

  /** Remember that `digests` are in `repo` (host/path), so a later push to another repo of that host can mount them. */
  private async noteSources(repo: string, digests: string[]): Promise<void> {
    await this.lock.run('sources', async () => {
      const m = (await readJson<Record<string, string[]>>(this.sourcesFile)) ?? {};
      for (const d of digests) m[d] = [repo, ...(m[d] ?? []).filter((r) => r !== repo)].slice(0, 4);
      await writeJsonAtomic(this.sourcesFile, m);
    });
  }

  private async sourcesOf(digest: string): Promise<string[]> {
    return ((await readJson<Record<string, string[]>>(this.sourcesFile)) ?? {})[digest] ?? [];
  }

  /** Check credentials against a registry (docker login): a ping, then a token or a Basic-authenticated /v2/. */
  async login(server: string | undefined, c: Credentials, save: boolean): Promise<{ status: string }> {
    const host = registryKey(server);
    const ref = parseReference(`${host}/silo-login-check`);
    let last: unknown;
    for (const ep of await this.o.hosts.endpoints(host)) {
      if (ep.mirror) continue;
      try {
        const cl = new RepoClient(this.t, ep, ref.path, [], c);
        await cl.checkLogin();
        if (save) await this.credentials.set(host, c);
        return { status: 'Login Succeeded' };
      } catch (e) {
        last = e;
        if (rank(e) === 2) break;
      }
    }
    throw last;
  }

  async logout(server: string | undefined): Promise<boolean> {
    return this.credentials.remove(registryKey(server));
  }

  /**
   * The manifest (or index) of a reference from the first endpoint that has it, mirrors first; with the endpoints
   * after it, where a blob that endpoint lacks is looked for next.
   */
  private async findManifest(ref: Reference, tagOrDigest: string, auth?: Credentials): Promise<{ cl: RepoClient; m: Awaited<ReturnType<RepoClient['getManifest']>>; from: Sources }> {
    let last: unknown;
    const eps = await this.o.hosts.endpoints(ref.domain);
    for (const [i, ep] of eps.entries()) {
      try {
        const cl = await this.client(ep, ref, ['pull'], auth);
        const m = await cl.getManifest(tagOrDigest);
        return { cl, m, from: new Sources(cl, eps.slice(i + 1), (e) => this.client(e, ref, ['pull'], auth)) };
      } catch (e) {
        if (!last || rank(e) > rank(last)) last = e;
      }
    }
    throw last;
  }

  /** What the registry has for a reference (docker's /distribution/{name}/json): its descriptor and platforms. */
  async resolve(name: string, o: { auth?: Credentials } = {}): Promise<{ descriptor: { mediaType: string; digest: string; size: number }; platforms: Platform[] }> {
    const ref = parseReference(name);
    const { cl, m } = await this.findManifest(ref, ref.digest ?? ref.tag!, o.auth);
    const descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
    if (m.manifest.kind === 'index') return { descriptor, platforms: m.manifest.manifests.flatMap((d) => (d.platform ? [d.platform] : [])) };
    const c = m.manifest.config;
    const chunks: Buffer[] = [];
    for await (const b of counted(await cl.getBlob(c, 'config'), c, 'config')) chunks.push(b);
    const cfg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Platform;
    return { descriptor, platforms: [{ os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) }] };
  }

  /** Pull every tag of a repository (docker pull --all-tags); the images, in the registry's tag order. */
  async pullAllTags(name: string, o: PullOptions = {}): Promise<Image[]> {
    const ref = parseReference(name);
    if (ref.digest || /:[^/]+$/.test(name)) throw invalid(`tag can't be used with --all-tags/-a: ${name}`);
    let last: unknown;
    for (const ep of await this.o.hosts.endpoints(ref.domain)) {
      let tags: string[];
      try {
        tags = await (await this.client(ep, ref, ['pull'], o.auth)).listTags();
      } catch (e) {
        if (!last || rank(e) > rank(last)) last = e;
        continue;
      }
      const out: Image[] = [];
      for (const tag of tags) out.push(await this.pull(formatReference({ ...ref, tag }), o));
      return out;
    }
    throw last;
  }

  /** Pull `name` (tag or digest). */
  async pull(name: string, o: PullOptions = {}): Promise<Image> {
    const ref = parseReference(name);
    const note = o.progress ?? (() => {});
    const tagOrDigest = ref.digest ?? ref.tag!;
    const familiar = formatReference({ ...ref, tag: undefined, digest: undefined });
    const found = await this.findManifest(ref, tagOrDigest, o.auth);
    const { from } = found;
    // The download workers start while the rest of the manifest and the config come.
    if (!this.o.inProcess) this.fetchers.warm();
    // Said only once the registry has the reference: a front door can still answer an error status until then.
    note({ status: `Pulling from ${ref.path}`, id: ref.digest ?? ref.tag });
    let top = found.m;
    const session = this.o.openContent();
    try {
      const want = o.platform ?? hostPlatform();
      if (top.manifest.kind === 'index') {
        const d = selectPlatform(top.manifest, want);
        const inner = await from.each((cl) => cl.getManifest(d.digest));
        if (inner.manifest.kind !== 'manifest') throw invalid(`manifest ${d.digest} of ${familiar}: an index inside an index is not supported`);
        top = inner;
      }
      const m = top.manifest as ImageManifest;
      // Store the image manifest itself (verified again by the store), then its config.
      await session.ingest(top.digest, top.bytes.length, once(top.bytes), top.mediaType);
      if (!(await session.has(m.config.digest))) {
        await from.each(async (cl) => session.ingest(m.config.digest, m.config.size, counted(await cl.getBlob(m.config, 'config'), m.config, 'config'), m.config.mediaType));
      }
      await this.checkPlatform(session, m.config.digest, want, o.platform !== undefined, familiar);
      const fetched = await this.fetchLayers(session, from, m.layers, note);
      const names = ref.tag ? [formatReference({ ...ref, digest: undefined })] : [];
      // "Downloaded newer image" when anything changed: blobs fetched, or the name now points at another image.
      const before = names.length ? await this.o.getImage(names[0]).then((i) => i.id, () => undefined) : undefined;
      const fresh = fetched || (names.length > 0 && before !== m.config.digest);
      // Killed here: blobs stored, no image references them; the sweep at the next start removes them.
      faultPoint('pull.before-image');
      const img = await session.createImage({ manifest: top.digest, names });
      await this.noteSources(`${found.cl.ep.host}/${ref.path}`, [m.config.digest, ...m.layers.map((l) => l.digest)]).catch(() => {});
      note({ status: `Digest: ${found.m.digest}` });
      note({ status: `Status: ${fresh ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarName(ref.digest ? `${familiar}@${ref.digest}` : formatReference(ref))}` });
      return img;
    } finally {
      await session.close();
    }
  }

  /** A single-platform image of another platform is refused when a platform was asked for (docker does the same). */
  private async checkPlatform(session: ContentSession, config: string, want: Platform, asked: boolean, name: string): Promise<void> {
    if (!asked) return;
    const chunks: Buffer[] = [];
    for await (const c of await session.open(config)) chunks.push(Buffer.from(c as Buffer));
    const cfg = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { os?: string; architecture?: string; variant?: string };
    if (cfg.os !== want.os || cfg.architecture !== want.architecture) {
      throw invalid(`image ${name} is for ${formatPlatform({ os: cfg.os ?? '?', architecture: cfg.architecture ?? '?', variant: cfg.variant })}, not the requested ${formatPlatform(want)}`);
    }
  }

  /** Download the layer blobs the store lacks, three at a time; true when at least one was fetched. */
  private async fetchLayers(session: ContentSession, from: Sources, layers: Descriptor[], note: ProgressSink): Promise<boolean> {
    const missing: Descriptor[] = [];
    for (const l of layers) {
      if (await session.has(l.digest)) note({ status: 'Already exists', id: short(l.digest) });
      else if (!missing.some((x) => x.digest === l.digest)) {
        missing.push(l);
        note({ status: 'Pulling fs layer', id: short(l.digest) });
      }
    }
    for (const l of missing.slice(this.o.maxConcurrentDownloads ?? 3)) note({ status: 'Waiting', id: short(l.digest) });
    await runLimited(missing, this.o.maxConcurrentDownloads ?? 3, async (l, i) => {
      const id = short(l.digest);
      let lastBytes = 0;
      let lastAt = 0;
      const progress = (n: number) => {
        const now = Date.now();
        if (n - lastBytes < NOTE_BYTES && now - lastAt < NOTE_MS && n !== l.size) return;
        lastBytes = n;
        lastAt = now;
        note({ status: 'Downloading', id, current: n, total: l.size });
      };
      const label = `layer ${layers.indexOf(l) + 1}`;
      await from.each(async (cl) => {
        if (this.o.inProcess || l.urls?.length) {
          const body = await cl.getBlob(l, label);
          await session.ingest(l.digest, l.size, counted(body, l, label, progress), l.mediaType);
          return;
        }
        // In a worker thread: the bytes are hashed, written and unpacked there; this thread adopts the result.
        const job = { ep: cl.ep, path: cl.path, creds: cl.credentials, state: await cl.state(), timeoutMs: this.o.timeoutMs, userAgent: this.o.userAgent, desc: l, label, ...session.spoolPlace, unpack: isLayerMedia(l.mediaType) };
        const f = await this.fetchers.fetch(job, progress);
        await session.adopt({ ...f, ...(f.refused ? { refused: revive(f.refused) } : {}) });
      });
      note({ status: 'Download complete', id });
      note({ status: 'Pull complete', id });
    });
    return missing.length > 0;
  }

  /** Every local tag of a repository, as full names (docker push --all-tags); InvalidArgument for a tagged name. */
  async localTags(name: string, list: () => Promise<Image[]>): Promise<string[]> {
    const r = parseReference(name);
    if (r.digest || /:[^/]+$/.test(name)) throw invalid(`tag can't be used with --all-tags/-a: ${name}`);
    const repo = formatReference({ ...r, tag: undefined, digest: undefined });
    return (await list()).flatMap((i) => i.names.filter((n) => n.startsWith(`${repo}:`))).sort();
  }

  /** Push a local image to the registry its name says, under its tag (all of the repository's local tags with no tag). */
  async push(name: string, o: { auth?: Credentials; progress?: ProgressSink } = {}): Promise<{ digest: string; size: number; tag: string }> {
    const ref = parseReference(name);
    if (ref.digest) throw invalid(`cannot push a digest reference "${name}": push a tag`);
    const note = o.progress ?? (() => {});
    const img = await this.o.getImage(formatReference(ref));
    if (!img.manifest) throw invalid(`image ${name} has no manifest in the content store (made before it existed): tag it again after a commit or pull it again`);
    const session = this.o.openContent();
    try {
      const chunks: Buffer[] = [];
      for await (const c of await session.open(img.manifest)) chunks.push(Buffer.from(c as Buffer));
      const bytes = Buffer.concat(chunks);
      const m = parseManifest(bytes, undefined);
      if (m.kind !== 'manifest') throw invalid(`image ${name}: its stored manifest is an index`);
      const eps = (await this.o.hosts.endpoints(ref.domain)).filter((e) => !e.mirror);
      note({ status: `The push refers to repository [${ref.domain}/${ref.path}]` });
      let last: unknown;
      for (const ep of eps) {
        const cl = await this.client(ep, ref, ['pull', 'push'], o.auth);
        try {
          await cl.ping();
        } catch (e) {
          last = e;
          continue;
        }
        await this.sendBlobs(session, cl, m, note);
        const digest = await cl.putManifest(ref.tag!, bytes, m.mediaType);
        await this.noteSources(`${ep.host}/${ref.path}`, [m.config.digest, ...m.layers.map((l) => l.digest)]).catch(() => {});
        note({ status: `${ref.tag}: digest: ${digest} size: ${bytes.length}` });
        note({ status: '', aux: { Tag: ref.tag, Digest: digest, Size: bytes.length } });
        return { digest, size: bytes.length, tag: ref.tag! };
      }
      throw last;
    } finally {
      await session.close();
    }
  }

  private async sendBlobs(session: ContentSession, cl: RepoClient, m: ImageManifest, note: ProgressSink): Promise<void> {
    const layers = m.layers.filter((l) => !isForeign(l)); // docker does not push non-distributable layers
    for (const l of layers) note({ status: 'Preparing', id: short(l.digest) });
    const max = this.o.maxConcurrentUploads ?? 5;
    for (const l of layers.slice(max)) note({ status: 'Waiting', id: short(l.digest) });
    const host = cl.ep.host;
    const send = async (d: Descriptor, id: string | undefined) => {
      if (await cl.hasBlob(d.digest)) {
        if (id) note({ status: 'Layer already exists', id });
        return;
      }
      const from = (await this.sourcesOf(d.digest)).find((r) => r.startsWith(host + '/') && r !== `${host}/${cl.path}`);
      const up = await cl.startUpload(d.digest, from?.slice(host.length + 1));
      if (up.mounted) {
        if (id) note({ status: `Mounted from ${from!.slice(host.length + 1)}`, id });
        return;
      }
      const size = await session.size(d.digest);
      const desc = { ...d, size };
      let lastAt = 0;
      const progress = (n: number) => {
        const now = Date.now();
        if (id && (now - lastAt >= NOTE_MS || n === size)) {
          lastAt = now;
          note({ status: 'Pushing', id, current: n, total: size });
        }
      };
      const chunk = this.o.chunkBytes ?? 32 * 1024 * 1024;
      const src = counted((await session.open(d.digest)) as AsyncIterable<Uint8Array>, desc, id ? 'layer' : 'config', progress);
      if (size <= chunk) await cl.putBlob(up.location, desc, size === 0 ? Buffer.alloc(0) : src);
      else await cl.putBlobChunked(up.location, desc, rechunk(src, chunk));
      if (id) note({ status: 'Pushed', id });
    };
    await runLimited(layers, max, (l) => send(l, short(l.digest)));
    await send(m.config, undefined);
  }
}

/**
 * Where a pull's blobs come from: the endpoint that served the manifest, then (for a blob it answers NotFound for)
 * each endpoint after it in order, as containerd's hosts.toml hosts are tried: a mirror that lacks a blob does not
 * fail the pull when the next mirror or the registry itself has it. The first endpoint's error is the one reported.
 */
class Sources {
  private made: Promise<RepoClient>[] = [];

  constructor(
    private readonly first: RepoClient,
    private readonly rest: Endpoint[],
    private readonly make: (ep: Endpoint) => Promise<RepoClient>,
  ) {}

  async each<T>(f: (cl: RepoClient) => Promise<T>): Promise<T> {
    let firstError: unknown;
    for (let i = 0; i <= this.rest.length; i++) {
      try {
        return await f(i === 0 ? this.first : await (this.made[i - 1] ??= this.make(this.rest[i - 1])));
      } catch (e) {
        if (i === 0) firstError = e;
        if (i === 0 && !(isSiloError(e) && e.class === 'NotFound')) throw e;
      }
    }
    throw firstError;
  }
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** Re-cut a byte stream into chunks of exactly `size` bytes (the last one shorter). */
async function* rechunk(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const b of src) {
    let buf = b;
    while (n + buf.length >= size) {
      const take = size - n;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      n = 0;
      buf = buf.subarray(take);
    }
    if (buf.length) {
      parts.push(buf);
      n += buf.length;
    }
  }
  if (n) yield Buffer.concat(parts);
}

