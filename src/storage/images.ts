// Image records: root/images/<idHex>.json, one document per image written atomically. The id is the sha256
// of the canonical JSON of the OCI image configuration the record carries, so it can be re-derived.

import { readdirSync } from 'node:fs';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, sweepTempFiles, writeJsonAtomic } from '../common/atomic.js';
import { invalid, notFound } from '../common/errors.js';
import { canonicalJson, hexOf, sha256 } from './digest.js';
import { normalizeName } from './reference.js';
import type { HistoryEntry, ImageConfig } from './types.js';

/** The OCI image configuration document (image-spec config.md). */
export interface OciImageConfig {
  created: string;
  author?: string;
  architecture: string;
  os: string;
  config: ImageConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history: HistoryEntry[];
}

export interface ImageDoc {
  /** The digest of the config blob. */
  id: string;
  names: string[];
  oci: OciImageConfig;
  /** Digest of the manifest blob; absent on images made before the content store (their layers have no blobs). */
  manifest?: string;
  /** Digests of the layer blobs, bottom first (with `manifest`). */
  layerBlobs?: string[];
  /** The image this one was made from by a commit or a build step (docker's Parent); absent on pulled/loaded ones. */
  parent?: string;
}

export const imageIdOf = (oci: OciImageConfig): string => sha256(canonicalJson(oci));

/** Node's arch names → OCI/Go names. */
export function ociArch(): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

const HEX64 = /^[a-f0-9]{64}$/;

export class ImageStore {
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, 'images');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    await sweepTempFiles(this.dir);
  }

  private file(id: string): string {
    return join(this.dir, `${hexOf(id)}.json`);
  }

  async read(id: string): Promise<ImageDoc | undefined> {
    if (!HEX64.test(hexOf(id))) return undefined;
    return readJson<ImageDoc>(this.file(id));
  }

  async all(): Promise<ImageDoc[]> {
    const out: ImageDoc[] = [];
    // Listed synchronously, as the records are read (readJson): a create resolves its image here.
    for (const n of readdirSync(this.dir)) {
      // Skip writeFileAtomic's temp files and anything else that is not a record.
      if (!n.endsWith('.json') || !HEX64.test(n.slice(0, -5))) continue;
      const d = await readJson<ImageDoc>(join(this.dir, n));
      if (d) out.push(d);
    }
    return out;
  }

  async write(doc: ImageDoc): Promise<void> {
    await writeJsonAtomic(this.file(doc.id), doc);
  }

  async delete(id: string): Promise<void> {
    await rm(this.file(id), { force: true });
  }

  /**
   * By name (any docker spelling), full id (with or without "sha256:"), or unique id prefix.
   * Returns the document and the normalised name when the lookup was by name.
   */
  async resolve(ref: string): Promise<{ doc: ImageDoc; byName?: string }> {
    const r = ref.trim();
    const hex = r.replace(/^sha256:/, '');
    if (HEX64.test(hex)) {
      const d = await this.read(hex);
      if (!d) throw notFound('image', ref);
      return { doc: d };
    }
    const docs = await this.all();
    let name: string | undefined;
    let parseError: unknown;
    if (!r.startsWith('sha256:')) {
      try {
        name = normalizeName(r);
      } catch (e) {
        parseError = e;
      }
    }
    if (name !== undefined) {
      const d = docs.find((x) => x.names.includes(name!));
      if (d) return { doc: d, byName: name };
    }
    if (/^[a-f0-9]+$/.test(hex)) {
      const hits = docs.filter((x) => hexOf(x.id).startsWith(hex));
      if (hits.length === 1) return { doc: hits[0] };
      if (hits.length > 1) throw invalid(`image id prefix "${ref}" is ambiguous (${hits.length} images match)`);
    }
    if (parseError) throw parseError;
    throw notFound('image', ref);
  }
}
