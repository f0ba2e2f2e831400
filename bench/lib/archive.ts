// A ~200 MB multi-layer docker-archive (`docker save` layout: manifest.json, the config, one layer.tar per layer) for
// the image-load rows. The file contents come from AES-128-CTR keystreams keyed by a fixed seed, so the archive is the
// same bytes on every run (same digests) and incompressible: a loader that gzips or dedups gains nothing from it.

import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import * as tar from 'tar-stream';
import { exec } from './proc.js';

const SEED = 'silo-bench-archive-v1';
const MTIME = new Date('2024-01-01T00:00:00Z');
const FILE_BYTES = 4 * 2 ** 20;
/** Files of 4 MiB per layer: 16 + 12 + 10 + 8 + 4 = 50 files, 200 MiB. */
const LAYERS = [16, 12, 10, 8, 4];

function keystream(name: string, bytes: number): Buffer {
  const key = createHash('sha256').update(`${SEED}/${name}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}

/** Writes one layer tar and returns its diff ID (sha256 of the uncompressed tar). */
async function writeLayer(path: string, index: number, files: number): Promise<string> {
  const pack = tar.pack();
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const tee = new Writable({
    write(chunk, _enc, cb) {
      hash.update(chunk);
      out.write(chunk) ? cb() : out.once('drain', () => cb());
    },
    final(cb) {
      out.end(cb);
    },
  });
  const done = pipeline(pack, tee);
  const base = { uid: 0, gid: 0, mtime: MTIME };
  pack.entry({ ...base, name: `data/layer${index}`, type: 'directory', mode: 0o755 });
  for (let f = 0; f < files; f++) {
    await new Promise<void>((res, rej) =>
      pack.entry({ ...base, name: `data/layer${index}/blob${f}`, mode: 0o644 }, keystream(`${index}/${f}`, FILE_BYTES), (e) => (e ? rej(e) : res())),
    );
  }
  pack.finalize();
  await done;
  return `sha256:${hash.digest('hex')}`;
}

export interface Archive {
  path: string;
  bytes: number;
  layers: number;
  tag: string;
}

export async function makeArchive(dir: string, tag: string): Promise<Archive> {
  const root = join(dir, 'archive');
  await mkdir(root, { recursive: true });
  const diffIds: string[] = [];
  const layerPaths: string[] = [];
  for (let i = 0; i < LAYERS.length; i++) {
    await mkdir(join(root, `layer${i}`), { recursive: true });
    layerPaths.push(`layer${i}/layer.tar`);
    diffIds.push(await writeLayer(join(root, layerPaths[i]), i, LAYERS[i]));
  }
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: MTIME.toISOString(),
    config: { Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created: MTIME.toISOString(), created_by: `bench layer ${i}` })),
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  await writeFile(join(root, configName), config);
  await writeFile(join(root, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: layerPaths }]));
  const path = join(dir, 'big-image.tar');
  const files = ['manifest.json', configName, ...layerPaths.flatMap((p) => [p.split('/')[0], p])];
  await exec('tar', ['--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--no-recursion', '-cf', path, '-C', root, ...files]);
  return { path, bytes: (await stat(path)).size, layers: LAYERS.length, tag };
}
