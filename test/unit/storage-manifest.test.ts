// Pure parts of the content store: manifest and config checks, the manifest Silo writes, the push-fed pipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildManifest, layerMediaType, parseConfig, parseManifest } from '../../src/storage/manifest.js';
import { isLayerMedia, MEDIA } from '../../src/storage/content.js';
import { compressionOf } from '../../src/storage/input.js';
import { Pipe } from '../../src/storage/pipe.js';

const D = (c: string) => 'sha256:' + c.repeat(64);

test('manifests: schema 2 (OCI and Docker) parse; schema 1, indexes and bad descriptors are refused with one line', () => {
  const m = { schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, digest: D('a'), size: 10 }, layers: [{ mediaType: MEDIA.dockerLayerGzip, digest: D('b'), size: 20, urls: ['https://x'] }] };
  const p = parseManifest(Buffer.from(JSON.stringify(m)), 'm');
  assert.equal(p.mediaType, MEDIA.dockerManifest);
  assert.deepEqual(p.layers[0], { mediaType: MEDIA.dockerLayerGzip, digest: D('b'), size: 20, urls: ['https://x'] });
  const noType = { ...m, mediaType: undefined };
  assert.equal(parseManifest(Buffer.from(JSON.stringify(noType)), 'm').mediaType, MEDIA.ociManifest);
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1,"fsLayers":[]}'), 'm'), /schema 1 manifest, which Silo does not support/);
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":2,"manifests":[]}'), 'm'), /an image index, not an image manifest/);
  assert.throws(() => parseManifest(Buffer.from('not json'), 'm'), /m is not valid JSON/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...m, layers: [{ ...m.layers[0], digest: 'sha512:ab' }] })), 'm'), /m layer 1: bad digest/);
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify({ ...m, config: { ...m.config, size: -1 } })), 'm'), /m config: bad size/);
});

test('configs: diff ids must match the layers; the manifest Silo writes is stable', () => {
  const c = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D('c')] }, config: { Cmd: ['sh'] } };
  assert.deepEqual(parseConfig(Buffer.from(JSON.stringify(c)), 1, 'c').rootfs.diff_ids, [D('c')]);
  assert.throws(() => parseConfig(Buffer.from(JSON.stringify(c)), 2, 'c'), /lists 1 diff IDs but the manifest 2 layers/);
  assert.throws(() => parseConfig(Buffer.from(JSON.stringify({ ...c, rootfs: {} })), 1, 'c'), /no valid rootfs.diff_ids/);
  const cfg = { mediaType: MEDIA.ociConfig, digest: D('a'), size: 3 };
  const l = { mediaType: MEDIA.ociLayer, digest: D('b'), size: 5, annotations: { x: 'y' } };
  const a = buildManifest(cfg, [l]);
  assert.deepEqual(a, buildManifest(cfg, [l]));
  assert.deepEqual(JSON.parse(a.toString()), { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: cfg, layers: [{ mediaType: MEDIA.ociLayer, digest: D('b'), size: 5 }] });
});

test('media types and compression by magic bytes', () => {
  assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
  assert.equal(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(compressionOf(Buffer.from('ustar')), 'none');
  assert.equal(layerMediaType('gzip'), MEDIA.ociLayerGzip);
  assert.equal(layerMediaType('zstd'), MEDIA.ociLayerZstd);
  for (const m of [MEDIA.ociLayer, MEDIA.ociLayerGzip, MEDIA.dockerLayerGzip, MEDIA.dockerForeignLayer, 'application/vnd.docker.image.rootfs.diff.tar']) assert.ok(isLayerMedia(m), m);
  for (const m of [MEDIA.ociManifest, MEDIA.ociConfig, MEDIA.dockerConfig, MEDIA.dockerList]) assert.ok(!isLayerMedia(m), m);
});

test('pipe: chunks in order, the pusher waits at the high-water mark, a reader that stops frees it', async () => {
  const p = new Pipe();
  const big = Buffer.alloc(3 * 1024 * 1024);
  await p.push(big); // below the mark: returns at once
  let second = false;
  const pushing = p.push(big).then(() => (second = true)); // past it: waits for the reader
  await new Promise((r) => setImmediate(r));
  assert.equal(second, false);
  const it = p[Symbol.asyncIterator]();
  assert.equal((await it.next()).value?.length, big.length);
  await pushing;
  assert.equal(second, true);
  await it.return(undefined); // the reader gives up
  await p.push(big); // dropped, never blocks
  const q = new Pipe();
  void q.push(Buffer.from('a'));
  q.end(new Error('boom'));
  const got: string[] = [];
  await assert.rejects(async () => {
    for await (const c of q) got.push(c.toString());
  }, /boom/);
  assert.deepEqual(got, ['a']);
});
