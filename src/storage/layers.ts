// Content-addressed layer store: root/layers/<chainIdHex>/{diff/,layer.json}. A layer is extracted into
// root/ingest/<random>/ and renamed into place only when complete, so a crash never leaves a half layer under
// its final name; whatever is in ingest/ at open is debris of an interrupted import and is deleted.

import { randomBytes } from 'node:crypto';
import { faultPoint } from '../common/fault.js';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, sweepTempFiles, writeJsonAtomic } from '../common/atomic.js';
import { notFound } from '../common/errors.js';
import { run } from '../common/exec.js';
import { childChainId, hexOf, isDigest } from './digest.js';
import { extractLayer, type ByteSource } from './extract.js';
import type { Caps } from './input.js';
import type { Layer } from './types.js';

interface LayerRecord {
  diffId: string;
  chainId: string;
  parent?: string;
  size: number;
  created: string;
}

/** An extracted layer in ingest/ not yet placed on a parent: no record yet. */
export interface LooseLayer {
  dir: string;
  diffId: string;
  size: number;
}

/** An extracted layer waiting in ingest/ to be published (or discarded). */
export interface PendingLayer {
  record: LayerRecord;
  dir: string;
}

const exists = (e: unknown) => ['EEXIST', 'ENOTEMPTY'].includes((e as NodeJS.ErrnoException).code ?? '');

export class LayerStore {
  readonly layersDir: string;
  readonly ingestDir: string;

  constructor(
    root: string,
    readonly caps: Caps,
  ) {
    this.layersDir = join(root, 'layers');
    this.ingestDir = join(root, 'ingest');
  }

  async init(): Promise<void> {
    for (const d of [this.layersDir, this.ingestDir]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chmod(d, 0o700); // CVE-2021-41091: no host user may reach setuid files inside layers
    }
    for (const n of await readdir(this.ingestDir)) await rm(join(this.ingestDir, n), { recursive: true, force: true });
    // layer.json's interrupted writes; never below a layer's top level (diff/ holds the image's own files).
    for (const n of await readdir(this.layersDir)) await sweepTempFiles(join(this.layersDir, n));
  }

  diffPath(chainId: string): string {
    return join(this.layersDir, hexOf(chainId), 'diff');
  }

  private toLayer(r: LayerRecord): Layer {
    return { diffId: r.diffId, chainId: r.chainId, parent: r.parent, size: r.size, path: this.diffPath(r.chainId) };
  }

  async get(chainId: string): Promise<Layer | undefined> {
    if (!isDigest(chainId)) return undefined;
    const r = await readJson<LayerRecord>(join(this.layersDir, hexOf(chainId), 'layer.json'));
    return r && this.toLayer(r);
  }

  async mustGet(chainId: string): Promise<Layer> {
    const l = await this.get(chainId);
    if (!l) throw notFound('layer', chainId);
    return l;
  }

  async list(): Promise<Layer[]> {
    const out: Layer[] = [];
    for (const n of await readdir(this.layersDir)) {
      const l = await this.get('sha256:' + n);
      if (l) out.push(l);
    }
    return out;
  }

  private async scratchDir(prefix: string): Promise<string> {
    const d = join(this.ingestDir, `${prefix}-${randomBytes(8).toString('hex')}`);
    await mkdir(d, { mode: 0o700 });
    return d;
  }

  /** Extract a tar (or tar.gz) stream on top of `parent` into ingest/. Leaves nothing behind on failure. */
  async ingest(input: ByteSource, parent?: string): Promise<PendingLayer> {
    return this.settle(await this.extract(input), parent);
  }

  /** Extract a tar (or tar.gz) stream into ingest/, not yet placed on a parent. Leaves nothing behind on failure. */
  /** With `hashPlain` false, an uncompressed input's diffId comes back '' for the caller to fill in (it hashed it). */
  async extract(input: ByteSource, hashPlain = true): Promise<LooseLayer> {
    const dir = await this.scratchDir('import');
    try {
      await mkdir(join(dir, 'diff'), { mode: 0o755 });
      const res = await extractLayer(input, join(dir, 'diff'), this.caps, hashPlain);
      return { dir, diffId: res.diffId, size: res.size };
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Place an extracted layer on `parent` (its record names its chain ID); the layer is deleted on failure. */
  async settle(l: LooseLayer, parent?: string): Promise<PendingLayer> {
    try {
      const record: LayerRecord = {
        diffId: l.diffId,
        chainId: childChainId(parent, l.diffId),
        parent,
        size: l.size,
        created: new Date().toISOString(),
      };
      await writeJsonAtomic(join(l.dir, 'layer.json'), record);
      return { record, dir: l.dir };
    } catch (e) {
      await rm(l.dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * A second, independent copy of an extracted layer in ingest/, for an archive that uses one layer tar at two places
   * of a chain. cp keeps owners, modes (setuid too), times, hardlinks, xattrs (opaque dirs) and whiteout devices, and
   * fails rather than silently dropping any of them; it never follows the layer's symlinks.
   */
  async copy(l: LooseLayer): Promise<LooseLayer> {
    const dir = await this.scratchDir('import');
    try {
      const keep = '--preserve=mode,ownership,timestamps,links,xattr';
      await run('cp', ['--recursive', '--no-dereference', keep, '--no-target-directory', '--', join(l.dir, 'diff'), join(dir, 'diff')]);
      return { dir, diffId: l.diffId, size: l.size };
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async discardLoose(l: LooseLayer): Promise<void> {
    await rm(l.dir, { recursive: true, force: true });
  }

  /** Move a pending layer under its chain ID. If that layer already exists, the copy is dropped. */
  async publish(p: PendingLayer): Promise<Layer> {
    if (p.record.parent) await this.mustGet(p.record.parent);
    faultPoint('import.before-publish');
    try {
      await rename(p.dir, join(this.layersDir, hexOf(p.record.chainId)));
    } catch (e) {
      if (!exists(e)) throw e;
      await this.discard(p);
    }
    return this.mustGet(p.record.chainId);
  }

  async discard(p: PendingLayer): Promise<void> {
    await rm(p.dir, { recursive: true, force: true });
  }

  /** Delete a layer: rename it out of layers/ first so a crash mid-delete leaves only ingest/ debris. */
  async remove(chainId: string): Promise<void> {
    const dead = join(this.ingestDir, `delete-${randomBytes(8).toString('hex')}`);
    try {
      await rename(join(this.layersDir, hexOf(chainId)), dead);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await rm(dead, { recursive: true, force: true });
  }
}
