// The content store against the real filesystem: blobs kept by digest and verified while they stream, images made
// from stored manifests, save/load keeping image ids and every digest (docker-archive and OCI layout), collection.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { openStorage, type StorageOptions } from '../../src/storage/index.js';
import type { StorageService } from '../../src/storage/types.js';

interface Ctx {
  s: StorageService;
  root: string;
  opts: StorageOptions;
}

async function fresh(t: TestContext): Promise<Ctx> {
  const r = randomBytes(4).toString('hex');
  const base = `/var/lib/silo-test-${r}`;
  const runBase = `/run/silo-test-${r}`;
  const opts = { root: `${base}/storage`, runDir: `${runBase}/storage` };
  const s = await openStorage(opts);
  t.after(async () => {
    for (const o of reopened.splice(0)) await o.close();
    await s.close(); // the scratch pool fills in the background
    // Retried all the same: a busy machine can be slow to let go of a directory.
    await rm(base, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    await rm(runBase, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });
  return { s, root: opts.root, opts };
}

/** Stores a test opened again on the same dirs (a "restart"): closed before the dirs go. */
const reopened: StorageService[] = [];
const reopen = async (opts: StorageOptions) => {
  const s = await openStorage(opts);
  reopened.push(s);
  return s;
};

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const blobs = async (c: Ctx) => (await readdir(join(c.root, 'blobs/sha256'))).map((h) => 'sha256:' + h).sort();
const chunks = (b: Buffer, n = 65536) => Readable.from((function* () { for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n); })());

async function tarOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const p = tar.pack();
  for (const [name, body] of Object.entries(files)) p.entry({ name, mode: 0o644, mtime: new Date(0) }, body);
  p.finalize();
  const out: Buffer[] = [];
  for await (const c of p as unknown as AsyncIterable<Buffer>) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

async function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

/** An archive's members by name. */
async function members(archive: Buffer): Promise<Map<string, Buffer>> {
  const ex = tar.extract();
  const out = new Map<string, Buffer>();
  Readable.from([archive]).pipe(ex);
  for await (const e of ex as unknown as AsyncIterable<AsyncIterable<Buffer> & { header: tar.Header }>) out.set(e.header.name, await collect(e as unknown as NodeJS.ReadableStream));
  return out;
}

async function archiveOf(m: Map<string, Buffer>): Promise<Buffer> {
  return tarOf(Object.fromEntries(m));
}

test('every image has a manifest and config blob; its id is the config digest; removal collects its blobs', async (t) => {
  const c = await fresh(t);
  const layer = await tarOf({ 'etc/hello': 'hi' });
  const img = await c.s.importImage(chunks(gzipSync(layer)), { name: 'gz:v1' });
  assert.ok(img.manifest);
  const manifest = JSON.parse((await readFile(join(c.root, 'blobs/sha256', img.manifest!.slice(7)))).toString());
  assert.equal(manifest.config.digest, img.id);
  assert.equal(sha(await readFile(join(c.root, 'blobs/sha256', img.id.slice(7)))), img.id);
  assert.equal(manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip', 'the layer blob is kept as it came');
  assert.equal(manifest.layers[0].digest, sha(gzipSync(layer)));
  assert.equal(img.layers[0], sha(layer), 'diff id of the uncompressed tar');
  assert.deepEqual(await blobs(c), [img.id, img.manifest!, manifest.layers[0].digest].sort());
  assert.deepEqual((await c.s.listBlobs()).map((b) => b.digest).sort(), await blobs(c));
  await c.s.removeImage('gz:v1');
  assert.deepEqual(await blobs(c), []);
});

test('save | load keeps the image id, manifest and every layer digest: docker-archive and OCI layout', async (t) => {
  const a = await fresh(t);
  const base = await a.s.importImage(chunks(await tarOf({ 'bin/x': 'x', pad: randomBytes(1536 * 1024) })), { name: 'base:v1', changes: ['CMD ["sh"]'] });
  const conf = await a.s.configureImage('base:v1', { config: { Cmd: ['echo'], Env: ['A=b'] }, createdBy: 'ENV A=b' });
  await a.s.tagImage(conf.id, 'app:v2');
  const saved = await collect(await a.s.exportImages(['base:v1', 'app:v2']));
  const m = await members(saved);
  assert.ok(m.has('manifest.json') && m.has('index.json'));
  for (const [name, body] of m) if (name.startsWith('blobs/sha256/')) assert.equal(sha(body), 'sha256:' + name.slice(13), name);

  // Into a fresh store, as docker-archive (manifest.json) and as OCI layout (index.json only).
  const docker = await fresh(t);
  const oci = await fresh(t);
  const withoutManifestJson = new Map([...m].filter(([k]) => k !== 'manifest.json' && k !== 'repositories'));
  for (const [c, archive] of [[docker, saved], [oci, await archiveOf(withoutManifestJson)]] as const) {
    const r = await c.s.loadImages(chunks(archive));
    assert.deepEqual(r.images.map((i) => i.id).sort(), [base.id, conf.id].sort());
    for (const orig of [base, conf]) {
      const got = await c.s.getImage(orig.id);
      assert.equal(got.manifest, orig.manifest);
      assert.deepEqual(got.layers, orig.layers);
    }
    assert.equal((await c.s.getImage('app:v2')).id, conf.id);
    assert.deepEqual(await blobs(c), await blobs(a));
    // Saved again, the archive's blobs are byte for byte the same.
    const again = await members(await collect(await c.s.exportImages(['base:v1', 'app:v2'])));
    for (const [name, body] of m) if (name.startsWith('blobs/')) assert.deepEqual(again.get(name), body, name);
  }
});

test('a blob with the wrong digest, a truncated one or a failing stream keeps nothing and names the blob', async (t) => {
  const c = await fresh(t);
  const layer = await tarOf({ f: randomBytes(2 * 1024 * 1024) });
  const other = sha(Buffer.from('other'));
  const session = c.s.openContent();
  await assert.rejects(session.ingest(other, undefined, chunks(layer), 'application/vnd.oci.image.layer.v1.tar'), (e: any) => {
    assert.equal(e.class, 'InvalidArgument');
    assert.match(e.message, new RegExp(`blob ${other}: digest mismatch`));
    return true;
  });
  await assert.rejects(session.ingest(sha(layer), layer.length, chunks(layer.subarray(0, layer.length - 100)), 'application/vnd.oci.image.layer.v1.tar'), new RegExp(`blob ${sha(layer)}: truncated, ${layer.length - 100} of ${layer.length} bytes`));
  await assert.rejects(session.ingest(sha(layer), layer.length - 1, chunks(layer), 'application/vnd.oci.image.layer.v1.tar'), /longer than/);
  const failing = Readable.from((async function* () {
    yield layer.subarray(0, 1024 * 1024);
    throw new Error('connection reset');
  })());
  await assert.rejects(session.ingest(sha(layer), layer.length, failing, 'application/vnd.oci.image.layer.v1.tar'), new RegExp(`blob ${sha(layer)}: connection reset`));
  const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
  await assert.rejects(session.ingest(sha(big), undefined, chunks(big), 'application/vnd.oci.image.manifest.v1+json'), /over 4194304 bytes/);
  await assert.rejects(session.ingest('sha256:nothex', undefined, chunks(layer), 'x'), /bad digest/);
  await session.close();
  assert.deepEqual(await blobs(c), []);
  assert.deepEqual(await readdir(join(c.root, 'blobs/ingest')), []);
  assert.deepEqual(await readdir(join(c.root, 'ingest')), []);
  assert.deepEqual(await c.s.listLayers(), []);
});

test('a session makes an image from stored blobs (gzip and plain layers), checks diff ids, and collects on close', async (t) => {
  const c = await fresh(t);
  const l1 = await tarOf({ 'a/one': '1' });
  const l2 = gzipSync(await tarOf({ 'a/two': '2', pad: randomBytes(2 * 1024 * 1024) }));
  const l2tar = await tarOf({ 'a/two': '2' }); // not what l2 holds: for the wrong-diff-id case
  const config = (diffIds: string[]) => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history: [] }));
  const good = config([sha(l1), sha(Buffer.from(await collect(Readable.from([l2]).pipe((await import('node:zlib')).createGunzip()))))]);
  const manifestOf = (cfg: Buffer) => Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha(cfg), size: cfg.length },
    layers: [
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: sha(l1), size: l1.length },
      { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: sha(l2), size: l2.length },
    ],
  }));
  const s = c.s.openContent();
  const m = manifestOf(good);
  assert.equal(await s.has(sha(l1)), false);
  for (const [b, mt] of [[m, 'application/vnd.docker.distribution.manifest.v2+json'], [good, 'application/vnd.docker.container.image.v1+json'], [l1, 'application/vnd.docker.image.rootfs.diff.tar'], [l2, 'application/vnd.docker.image.rootfs.diff.tar.gzip']] as const) {
    assert.deepEqual(await s.ingest(sha(b), b.length, chunks(b), mt), { digest: sha(b), size: b.length });
  }
  assert.equal(await s.has(sha(l2)), true);
  assert.equal(await s.size(sha(l2)), l2.length);
  assert.deepEqual(await collect(await s.open(sha(l2))), l2);
  const img = await s.createImage({ manifest: sha(m), names: ['reg.example:5000/app:v1'] });
  assert.equal(img.id, sha(good));
  assert.equal(img.manifest, sha(m));
  assert.deepEqual(img.names, ['reg.example:5000/app:v1']);
  const top = (await c.s.listLayers()).find((l) => l.diffId === img.layers[1])!;
  assert.equal(await readFile(join(top.path, 'a/two'), 'utf8'), '2');

  // A config whose diff ids do not match the layers: refused, no image, and its blobs go at close.
  const bad = config([sha(l1), sha(l2tar)]);
  const bm = manifestOf(bad);
  await s.ingest(sha(bad), bad.length, chunks(bad), 'application/vnd.docker.container.image.v1+json');
  await s.ingest(sha(bm), bm.length, chunks(bm), 'application/vnd.docker.distribution.manifest.v2+json');
  await assert.rejects(s.createImage({ manifest: sha(bm) }), /layer 2 .* has diff ID .* its config says/);
  await assert.rejects(s.createImage({ manifest: sha(Buffer.from('missing')) }), /not in the content store/);
  await s.close();
  assert.deepEqual(await blobs(c), [sha(m), sha(good), sha(l1), sha(l2)].sort());
  assert.equal((await c.s.listImages()).length, 1);
  assert.deepEqual(await readdir(join(c.root, 'ingest')), []);

  // Blobs brought in but never made into an image are collected at the next open (a daemon killed mid-pull).
  const s2 = c.s.openContent();
  const stray = await tarOf({ stray: 'x' });
  await s2.ingest(sha(stray), undefined, chunks(stray), 'application/vnd.oci.image.layer.v1.tar');
  assert.ok((await blobs(c)).includes(sha(stray)));
  await reopen(c.opts);
  assert.ok(!(await blobs(c)).includes(sha(stray)));
  await c.s.removeImage(img.id);
  assert.deepEqual(await blobs(c), []);
  assert.deepEqual(await c.s.listLayers(), []);
  assert.ok((await stat(join(c.root, 'blobs/sha256'))).isDirectory());
});

test('zstd layers are unpacked where Node has zstd, else refused with a clear error', async (t) => {
  const c = await fresh(t);
  const zlib = (await import('node:zlib')) as unknown as { zstdCompressSync?: (b: Buffer) => Buffer };
  if (!zlib.zstdCompressSync) {
    // A zstd frame by its magic number: this Node cannot make one, and must say so when given one.
    const frame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(64)]);
    await assert.rejects(c.s.importImage(chunks(frame), {}), /zstd-compressed layers need Node 22\.15 or later/);
    assert.deepEqual(await blobs(c), []);
    return;
  }
  const layer = await tarOf({ z: 'zstd' });
  const img = await c.s.importImage(chunks(zlib.zstdCompressSync(layer)), { name: 'z:v1' });
  assert.equal(img.layers[0], sha(layer));
});

test('volumes are storage objects: records, idempotent create, in-use refusal, and open removes a half-made one', async (t) => {
  const c = await fresh(t);
  const v = await c.s.createVolume('data1', { labels: { a: 'b' } });
  assert.equal(v.Mountpoint, join(c.root, 'volumes/data1/_data'));
  assert.deepEqual((await c.s.createVolume('data1')).CreatedAt, v.CreatedAt, 'create is idempotent');
  await assert.rejects(c.s.createVolume('xx', { options: { size: '1g' } }), (e: any) => e.class === 'InvalidArgument' && /not supported/.test(e.message));
  await assert.rejects(c.s.createVolume('../up'), (e: any) => e.class === 'InvalidArgument');
  await assert.rejects(c.s.getVolume('nope'), (e: any) => e.class === 'NotFound' && e.fields.kind === 'volume');
  await assert.rejects(c.s.removeVolume('data1', { inUseBy: ['c1'] }), (e: any) => e.class === 'Conflict' && /in use - \[c1\]/.test(e.message));
  // A create killed between the data directory and the record: the next open removes the directory.
  const { mkdir: mk } = await import('node:fs/promises');
  await mk(join(c.root, 'volumes/half/_data'), { recursive: true });
  const s2 = await reopen(c.opts);
  assert.deepEqual((await s2.listVolumes()).map((x) => x.Name), ['data1']);
  assert.deepEqual((await readdir(join(c.root, 'volumes'))).sort(), ['data1']);
  await s2.removeVolume('data1');
  assert.deepEqual(await s2.listVolumes(), []);
});

test('images recorded before the content store get their blobs when their layers re-tar to the same diff ids', async (t) => {
  const { diffTar } = await import('../../src/storage/commit.js');
  const { writeFile: wf } = await import('node:fs/promises');
  const c = await fresh(t);
  const foreign = await c.s.importImage(chunks(await tarOf({ 'z/b': 'b', 'a/c': 'c' })), { name: 'foreign:v1' });
  const dir = (await c.s.listLayers())[0].path;
  const own = await c.s.importImage(await diffTar(dir) as unknown as NodeJS.ReadableStream, { name: 'own:v1' });
  // Make both records look as they did before the content store: no manifest, no blobs.
  for (const img of [foreign, own]) {
    const f = join(c.root, 'images', `${img.id.slice(7)}.json`);
    const doc = JSON.parse(await readFile(f, 'utf8'));
    delete doc.manifest;
    delete doc.layerBlobs;
    await wf(f, JSON.stringify(doc));
  }
  await rm(join(c.root, 'blobs/sha256'), { recursive: true });
  const s = await reopen(c.opts); // adopts in the background; a second run waits for it and finds nothing left
  await (s as unknown as { adoptLegacyImages(): Promise<number> }).adoptLegacyImages();
  const adopted = await s.getImage('own:v1');
  assert.ok(adopted.manifest);
  assert.equal((await s.getImage('foreign:v1')).manifest, undefined, 'a foreign tar does not re-tar to its diff id');
  // Both still save; the adopted one keeps its id through a load, the other gets a new one as before.
  const other = await fresh(t);
  const r = await other.s.loadImages(chunks(await collect(await s.exportImages(['own:v1', 'foreign:v1']))));
  assert.ok(r.images.some((i) => i.id === own.id));
  assert.ok(!r.images.some((i) => i.id === foreign.id));
});
