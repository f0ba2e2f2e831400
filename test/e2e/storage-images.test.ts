// End to end against the real filesystem: base image, imports, hostile archives, whiteouts, image names.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { run } from '../../src/common/exec.js';
import { chainIds } from '../../src/storage/digest.js';
import { openStorage, type StorageOptions } from '../../src/storage/index.js';
import type { ExtractTree } from '../../src/storage/extract.js';
import type { StorageService } from '../../src/storage/types.js';

interface Ctx {
  s: StorageService;
  root: string;
  base: string;
  opts: StorageOptions;
}

async function fresh(t: TestContext, caps: Partial<StorageOptions> = {}): Promise<Ctx> {
  const r = randomBytes(4).toString('hex');
  const base = `/var/lib/silo-test-${r}`;
  const runBase = `/run/silo-test-${r}`;
  const opts = { root: `${base}/storage`, runDir: `${runBase}/storage`, ...caps };
  const s = await openStorage(opts);
  t.after(async () => {
    for (const id of await s.listRoots()) await s.removeRoot(id);
    await s.close(); // the scratch pool fills in the background
    await rm(base, { recursive: true, force: true });
    await rm(runBase, { recursive: true, force: true });
  });
  return { s, root: opts.root, base, opts };
}

type E = { name: string; type?: tar.Header['type']; linkname?: string; body?: string | Buffer; mode?: number; uid?: number; gid?: number; devmajor?: number; devminor?: number };

async function tarOf(entries: E[]): Promise<Buffer> {
  const p = tar.pack();
  for (const e of entries) {
    const { body, ...h } = e;
    if (body !== undefined) p.entry({ mode: 0o644, ...h }, body);
    else p.entry({ mode: h.type === 'directory' ? 0o755 : 0o644, ...h });
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

const stream = (b: Buffer) => Readable.from([b]);

async function nothingLeft(c: Ctx): Promise<void> {
  assert.deepEqual(await c.s.listImages(), []);
  assert.deepEqual(await c.s.listLayers(), []);
  assert.deepEqual(await readdir(join(c.root, 'ingest')), []);
  assert.deepEqual(await readdir(join(c.root, 'layers')), []);
  assert.deepEqual(await readdir(join(c.root, 'blobs/sha256')), []);
  assert.deepEqual(await readdir(join(c.root, 'blobs/ingest')), []);
}

async function refused(c: Ctx, archive: Buffer, cls: string, msg: RegExp): Promise<void> {
  await assert.rejects(c.s.importImage(stream(archive), { name: 'evil' }), (e: any) => {
    assert.equal(e.class, cls, e.message);
    assert.match(e.message, msg);
    return true;
  });
  await nothingLeft(c);
}

test('base image: built from busybox-static, idempotent, stable id, 0700 dirs', async (t) => {
  const c = await fresh(t);
  const a = await c.s.ensureBaseImage();
  assert.deepEqual(a.names, ['docker.io/library/busybox:latest']);
  assert.deepEqual(a.config.Cmd, ['sh']);
  assert.ok(a.config.Env?.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'));
  assert.equal(a.layers.length, 1);
  const b = await c.s.ensureBaseImage();
  assert.equal(b.id, a.id);
  assert.equal((await c.s.listImages()).length, 1);
  const layer = (await c.s.listLayers())[0];
  assert.equal(layer.diffId, a.layers[0]);
  const sh = await lstat(join(layer.path, 'bin/sh'));
  const bb = await lstat(join(layer.path, 'bin/busybox'));
  assert.equal(sh.ino, bb.ino);
  assert.equal((await lstat(join(layer.path, 'tmp'))).mode & 0o7777, 0o1777);
  assert.match(await readFile(join(layer.path, 'etc/passwd'), 'utf8'), /^nobody:x:65534/m);
  for (const d of ['', 'layers', 'images', 'ingest', 'scratch']) assert.equal((await lstat(join(c.root, d))).mode & 0o777, 0o700, d);
  // A second store builds the same bytes: same id.
  const c2 = await fresh(t);
  assert.equal((await c2.s.ensureBaseImage()).id, a.id);
});

test('import: plain and gzip tar, changes, metadata preserved, lookups', async (t) => {
  const c = await fresh(t);
  const mtime = new Date('2020-02-02T00:00:00Z');
  const archive = await tarOf([
    { name: 'bin/', type: 'directory', mtime } as E,
    { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 1001, mtime } as E,
    { name: '/abs/file', body: 'x' },
    { name: 'link', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'hard', type: 'link', linkname: 'bin/tool' },
  ]);
  const img = await c.s.importImage(stream(archive), { name: 'foo/bar:v1', changes: ['CMD ["/bin/tool"]', 'ENV A=b', 'WORKDIR /w'], comment: 'hi' });
  assert.deepEqual(img.names, ['docker.io/foo/bar:v1']);
  assert.deepEqual(img.config, { Cmd: ['/bin/tool'], Env: ['A=b'], WorkingDir: '/w' });
  assert.equal(img.history[0].comment, 'hi');
  assert.equal(img.size, archive.length);
  const layer = (await c.s.listLayers())[0];
  const st = await lstat(join(layer.path, 'bin/tool'));
  assert.equal(st.mode & 0o7777, 0o4755);
  assert.equal(st.uid, 1000);
  assert.equal(st.gid, 1001);
  assert.equal(st.mtime.getTime(), mtime.getTime());
  assert.equal((await lstat(join(layer.path, 'bin'))).mtime.getTime(), mtime.getTime());
  assert.equal(await readlink(join(layer.path, 'link')), '/etc/passwd');
  assert.equal((await lstat(join(layer.path, 'hard'))).ino, st.ino);
  assert.equal(await readFile(join(layer.path, 'abs/file'), 'utf8'), 'x');

  const gz = await c.s.importImage(stream(gzipSync(archive)), { name: 'localhost:5000/x' });
  assert.equal(gz.layers[0], img.layers[0], 'same diff id for gzip input');
  assert.equal((await c.s.listLayers()).length, 1, 'layer shared');

  for (const ref of ['foo/bar:v1', 'docker.io/foo/bar:v1', img.id, img.id.slice(7), img.id.slice(7, 19)]) {
    assert.equal((await c.s.getImage(ref)).id, img.id, ref);
  }
  await assert.rejects(c.s.getImage('foo/bar'), (e: any) => e.class === 'NotFound');
  await assert.rejects(c.s.getImage('Bad:Name:'), (e: any) => e.class === 'InvalidArgument');
  await assert.rejects(c.s.importImage(stream(archive), { name: 'UPPER' }), (e: any) => e.class === 'InvalidArgument');
  await assert.rejects(c.s.importImage(stream(archive), { changes: ['RUN x'] }), (e: any) => e.class === 'InvalidArgument');
});

test('names move on re-tag; dangling images stay listable; removal collects layers', async (t) => {
  const c = await fresh(t);
  const a = await c.s.importImage(stream(await tarOf([{ name: 'a', body: 'a' }])), { name: 'app' });
  const b = await c.s.importImage(stream(await tarOf([{ name: 'b', body: 'b' }])), { name: 'app' });
  assert.deepEqual((await c.s.getImage(a.id)).names, [], 'a is dangling');
  assert.deepEqual((await c.s.getImage('app:latest')).id, b.id);
  assert.equal((await c.s.listImages()).length, 2);
  await c.s.tagImage('app', 'other:1');
  assert.deepEqual((await c.s.getImage(b.id)).names, ['docker.io/library/app:latest', 'docker.io/library/other:1']);
  assert.deepEqual(await c.s.removeImage('other:1'), { untagged: ['docker.io/library/other:1'], deleted: [] });
  await assert.rejects(c.s.removeImage('app', { inUse: (id) => id === b.id }), (e: any) => e.class === 'Conflict');
  assert.deepEqual(await c.s.removeImage(a.id), { untagged: [], deleted: [a.id] });
  assert.equal((await c.s.listLayers()).length, 1);
  assert.deepEqual(await c.s.removeImage('app'), { untagged: ['docker.io/library/app:latest'], deleted: [b.id] });
  await nothingLeft(c);
});

test('hostile archives are refused and leave nothing behind', async (t) => {
  const c = await fresh(t);
  const outside = join(c.base, 'outside');
  await mkdir(outside);
  const canary = `/etc/silo-canary-${randomBytes(4).toString('hex')}`;
  const passwd = await readFile('/etc/passwd');
  const cases: [string, E[], RegExp][] = [
    ['traversal', [{ name: '../x', body: 'x' }], /"\.\.\/x".*escapes/],
    ['nested traversal', [{ name: 'a/../../x', body: 'x' }], /escapes/],
    ['symlink to /etc then through it', [{ name: 'x', type: 'symlink', linkname: '/etc' }, { name: `x/${canary.slice(5)}`, body: 'pwned' }], /symlink "x"/],
    ['symlink outside then through it', [{ name: 'x', type: 'symlink', linkname: outside }, { name: 'x/f', body: 'pwned' }], /x\/f.*symlink "x"/],
    ['symlink to .. then through it', [{ name: 'd/', type: 'directory' }, { name: 'd/up', type: 'symlink', linkname: '../..' }, { name: 'd/up/escaped', body: 'x' }], /symlink "d\/up"/],
    ['dir symlink via dir entry', [{ name: 'x', type: 'symlink', linkname: outside }, { name: 'x/sub/', type: 'directory' }], /symlink "x"/],
    ['hardlink to /etc/passwd', [{ name: 'l', type: 'link', linkname: '/etc/passwd' }], /"l".*not in the layer/],
    ['hardlink escaping', [{ name: 'l', type: 'link', linkname: '../../x' }], /"l".*escapes/],
    ['hardlink through symlink', [{ name: 'x', type: 'symlink', linkname: '/etc' }, { name: 'l', type: 'link', linkname: 'x/passwd' }], /symlink "x"/],
    ['char device', [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }], /"null".*character-device/],
    ['block device', [{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], /block-device/],
    ['fifo', [{ name: 'p', type: 'fifo' }], /fifo/],
  ];
  for (const [what, entries, msg] of cases) {
    await t.test(what, async () => refused(c, await tarOf(entries), 'InvalidArgument', msg));
  }
  assert.ok(!existsSync(canary));
  assert.deepEqual(await readdir(outside), []);
  assert.deepEqual(await readFile('/etc/passwd'), passwd);

  // A later file entry over an earlier symlink replaces the link instead of writing through it.
  await writeFile(join(outside, 'target'), 'keep');
  const img = await c.s.importImage(stream(await tarOf([{ name: 'f', type: 'symlink', linkname: join(outside, 'target') }, { name: 'f', body: 'new' }])), {});
  const layer = (await c.s.listLayers()).find((l) => l.diffId === img.layers[0])!;
  assert.ok((await lstat(join(layer.path, 'f'))).isFile());
  assert.equal(await readFile(join(outside, 'target'), 'utf8'), 'keep');

  // A directory replaced by a symlink later in the archive: its recorded mtime must not land outside.
  await mkdir(join(outside, 'sub'));
  const before = (await lstat(join(outside, 'sub'))).mtimeMs;
  const old = new Date('2001-01-01T00:00:00Z');
  await c.s.importImage(stream(await tarOf([{ name: 'd/sub/', type: 'directory', mtime: old } as E, { name: 'd', type: 'symlink', linkname: outside }])), {});
  assert.equal((await lstat(join(outside, 'sub'))).mtimeMs, before);
});

/** A tar.gz of one file of `bytes` zeros, streamed so the test never holds the big file. */
async function zeroBomb(bytes: number): Promise<Buffer> {
  const p = tar.pack();
  const gz = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on('data', (b: Buffer) => out.push(b));
  const done = new Promise((r) => gz.on('end', r));
  (p as unknown as Readable).pipe(gz);
  const w = p.entry({ name: 'zeros', size: bytes, mode: 0o644 });
  const chunk = Buffer.alloc(1 << 20);
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!w.write(chunk.subarray(0, Math.min(chunk.length, left)))) await new Promise<void>((r) => w.once('drain', () => r()));
  }
  w.end(undefined);
  p.finalize();
  await done;
  return Buffer.concat(out);
}

test('bombs: size cap, compression ratio cap, entry cap', async (t) => {
  const bomb = await zeroBomb(200 * 1024 * 1024);
  assert.ok(bomb.length < 1024 * 1024, `bomb is ${bomb.length} bytes`);
  const bySize = await fresh(t, { maxLayerBytes: 16 * 1024 * 1024 });
  await refused(bySize, bomb, 'ResourceExhausted', /uncompressed size passes the cap/);
  const byRatio = await fresh(t, { ratioAfterBytes: 4 * 1024 * 1024 });
  await refused(byRatio, bomb, 'ResourceExhausted', /compression ratio/);
  const byCount = await fresh(t, { maxEntries: 10 });
  await refused(byCount, await tarOf(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, body: '' }))), 'ResourceExhausted', /more than 10 entries/);
  await refused(byCount, Buffer.from('this is not a tar archive at all'.repeat(20)), 'InvalidArgument', /refused/);
});

test('whiteouts become overlay whiteouts and opaque dirs', async (t) => {
  const c = await fresh(t);
  const img = await c.s.importImage(
    stream(await tarOf([{ name: 'etc/', type: 'directory' }, { name: 'etc/.wh.group', body: '' }, { name: 'opq/', type: 'directory' }, { name: 'opq/.wh..wh..opq', body: '' }, { name: 'opq/keep', body: 'k' }, { name: '.wh..wh.plnk', body: '' }])),
    {},
  );
  const layer = (await c.s.listLayers()).find((l) => l.diffId === img.layers[0])!;
  const wh = await lstat(join(layer.path, 'etc/group'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
  assert.ok(!existsSync(join(layer.path, 'etc/.wh.group')));
  const fa = await run('getfattr', ['-h', '--only-values', '-n', 'trusted.overlay.opaque', join(layer.path, 'opq')]);
  assert.equal(fa.stdout, 'y');
  assert.deepEqual((await readdir(join(layer.path, 'opq'))).sort(), ['keep']);
  assert.deepEqual((await readdir(layer.path)).sort(), ['etc', 'opq']);
});

test('open clears debris of interrupted imports', async (t) => {
  const c = await fresh(t);
  await mkdir(join(c.root, 'ingest', 'import-deadbeef', 'diff'), { recursive: true });
  await writeFile(join(c.root, 'ingest', 'import-deadbeef', 'diff', 'half'), 'x');
  await (await openStorage(c.opts)).close();
  assert.deepEqual(await readdir(join(c.root, 'ingest')), []);
});

// docker load. Layer tars of at least 1 MiB are extracted as the archive streams in, smaller ones spooled first; each
// case below has a big layer (random padding) so both ways are covered.

const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const pad = (): E => ({ name: 'pad', body: randomBytes(1536 * 1024) });
/** The archive in 64 KiB chunks, as a socket would give it. */
const chunked = (b: Buffer) => Readable.from((function* () { for (let i = 0; i < b.length; i += 65536) yield b.subarray(i, i + 65536); })());

function configOf(diffIds: string[]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history: [] }));
}

/** A docker-archive in `docker save`'s legacy layout: layer dirs first, manifest.json last; `links` are layer.tar symlinks. */
async function dockerArchive(tag: string, layers: (Buffer | string)[], diffIds?: string[]): Promise<Buffer> {
  const entries: E[] = [];
  const paths: string[] = [];
  layers.forEach((l, i) => {
    entries.push({ name: `l${i}/`, type: 'directory' });
    if (typeof l === 'string') entries.push({ name: `l${i}/layer.tar`, type: 'symlink', linkname: `../${l}/layer.tar` });
    else entries.push({ name: `l${i}/layer.tar`, body: l });
    paths.push(`l${i}/layer.tar`);
  });
  const ids = diffIds ?? layers.map((l) => sha(typeof l === 'string' ? (layers[Number(l.slice(1))] as Buffer) : l));
  entries.push({ name: 'config.json', body: configOf(ids) });
  entries.push({ name: 'manifest.json', body: JSON.stringify([{ Config: 'config.json', RepoTags: [tag], Layers: paths }]) });
  return tarOf(entries);
}

async function loadRefused(c: Ctx, archive: Buffer, cls: string, msg: RegExp): Promise<void> {
  await assert.rejects(c.s.loadImages(chunked(archive)), (e: any) => {
    assert.equal(e.class, cls, e.message);
    assert.match(e.message, msg);
    return true;
  });
  await nothingLeft(c);
}

test('load: a layer used twice, linked layer.tar, metadata, whiteouts; loading again adds nothing', async (t) => {
  const c = await fresh(t);
  const old = new Date('2001-01-01T00:00:00Z');
  const l1 = await tarOf([
    { name: 'd/', type: 'directory', mode: 0o750, uid: 7, gid: 8, mtime: old } as E,
    { name: 'd/tool', body: 'bin', mode: 0o4755, uid: 1000, gid: 1001, mtime: old } as E,
    { name: 'd/hard', type: 'link', linkname: 'd/tool' },
    { name: 'd/link', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'o/', type: 'directory' },
    { name: 'o/.wh..wh..opq', body: '' },
    { name: '.wh.gone', body: '' },
    pad(),
  ]);
  const l2 = await tarOf([{ name: 'x', body: 'x' }, pad()]);
  const small = await tarOf([{ name: 'small', body: 's' }]);
  // l1 at the bottom and again on top (another chain ID), the second time through a symlinked layer.tar.
  const archive = await dockerArchive('dup:v1', [l1, small, l2, 'l0']);
  const r = await c.s.loadImages(chunked(archive));
  assert.deepEqual(r.names, ['docker.io/library/dup:v1']);
  const img = r.images[0];
  assert.deepEqual(img.layers, [sha(l1), sha(small), sha(l2), sha(l1)]);
  const layers = await c.s.listLayers();
  assert.equal(layers.length, 4);
  const chain = chainIds(img.layers);
  const dirs = chain.map((id) => layers.find((l) => l.chainId === id)!.path);
  for (const d of [dirs[0], dirs[3]]) {
    const tool = await lstat(join(d, 'd/tool'));
    assert.equal(tool.mode & 0o7777, 0o4755, d);
    assert.deepEqual([tool.uid, tool.gid, tool.mtime.getTime()], [1000, 1001, old.getTime()]);
    assert.equal((await lstat(join(d, 'd/hard'))).ino, tool.ino);
    assert.equal(tool.nlink, 2);
    const dir = await lstat(join(d, 'd'));
    assert.deepEqual([dir.mode & 0o7777, dir.uid, dir.gid, dir.mtime.getTime()], [0o750, 7, 8, old.getTime()]);
    assert.equal(await readlink(join(d, 'd/link')), '/etc/passwd');
    const wh = await lstat(join(d, 'gone'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
    assert.equal((await run('getfattr', ['-h', '--only-values', '-n', 'trusted.overlay.opaque', join(d, 'o')])).stdout, 'y');
    assert.deepEqual(await readFile(join(d, 'pad')), await readFile(join(dirs[0], 'pad')));
  }
  assert.notEqual((await lstat(join(dirs[0], 'd/tool'))).ino, (await lstat(join(dirs[3], 'd/tool'))).ino, 'copies, not links');
  assert.equal(await readFile(join(dirs[2], 'x'), 'utf8'), 'x');
  assert.deepEqual(await readdir(join(c.root, 'ingest')), []);

  const again = await c.s.loadImages(chunked(archive));
  assert.equal(again.images[0].id, img.id);
  assert.equal((await c.s.listLayers()).length, 4);
  assert.deepEqual(await readdir(join(c.root, 'ingest')), []);
  await c.s.removeImage('dup:v1');
  await nothingLeft(c);
});

test('load: an OCI image layout with gzip layers, blobs before index.json', async (t) => {
  const c = await fresh(t);
  const layer = await tarOf([{ name: 'etc/', type: 'directory' }, { name: 'etc/hello', body: 'hi' }, pad()]);
  const gz = gzipSync(layer);
  assert.ok(gz.length > 1024 * 1024);
  const config = configOf([sha(layer)]);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length }],
  }));
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/oci:v1' } }] };
  const blob = (b: Buffer): E => ({ name: `blobs/sha256/${sha(b).slice(7)}`, body: b });
  const archive = await tarOf([blob(gz), blob(config), blob(manifest), { name: 'index.json', body: JSON.stringify(index) }, { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' }]);
  const r = await c.s.loadImages(chunked(gzipSync(archive)));
  assert.deepEqual(r.names, ['docker.io/library/oci:v1']);
  const l = (await c.s.listLayers())[0];
  assert.equal(l.diffId, sha(layer));
  assert.equal(await readFile(join(l.path, 'etc/hello'), 'utf8'), 'hi');
  assert.deepEqual(await readdir(join(c.root, 'ingest')), []);
});

test('load: hostile or wrong layers are refused with nothing left; an unused one does not matter', async (t) => {
  const c = await fresh(t);
  const outside = join(c.base, 'outside');
  await mkdir(outside);
  const good = await tarOf([{ name: 'ok', body: 'ok' }, pad()]);
  const cases: [string, E[], RegExp][] = [
    ['traversal', [pad(), { name: '../x', body: 'x' }], /"\.\.\/x".*escapes/],
    ['symlink out then through it', [{ name: 'x', type: 'symlink', linkname: outside }, pad(), { name: 'x/f', body: 'pwned' }], /symlink "x"/],
    ['hardlink to /etc/passwd', [pad(), { name: 'l', type: 'link', linkname: '/etc/passwd' }], /not in the layer/],
    ['char device', [pad(), { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }], /character-device/],
  ];
  for (const [what, entries, msg] of cases) {
    await t.test(what, async () => {
      const evil = await tarOf(entries);
      await loadRefused(c, await dockerArchive('evil:v1', [good, evil]), 'InvalidArgument', msg);
      await loadRefused(c, await dockerArchive('evil:v1', [evil, good]), 'InvalidArgument', msg);
    });
  }
  assert.deepEqual(await readdir(outside), []);
  await t.test('diff ID mismatch', async () => loadRefused(c, await dockerArchive('evil:v1', [good], [sha(Buffer.from('other'))]), 'InvalidArgument', /diff ID/));
  await t.test('a layer as the config', async () => {
    const a = await tarOf([{ name: 'l.tar', body: good }, { name: 'manifest.json', body: JSON.stringify([{ Config: 'l.tar', RepoTags: ['x:1'], Layers: ['l.tar'] }]) }]);
    await loadRefused(c, a, 'InvalidArgument', /l\.tar is not valid JSON/);
  });
  await t.test('a hostile layer tar the manifest does not use', async () => {
    const a = await dockerArchive('fine:v1', [good]);
    const extra = await tarOf([{ name: 'stray/layer.tar', body: await tarOf(cases[0][1]) }]);
    const r = await c.s.loadImages(chunked(Buffer.concat([extra.subarray(0, extra.length - 1024), a])));
    assert.deepEqual(r.names, ['docker.io/library/fine:v1']);
    await c.s.removeImage('fine:v1');
    await nothingLeft(c);
  });
  await t.test('cut off or failing in the middle of a layer', async () => {
    const a = await dockerArchive('cut:v1', [good, good.subarray(0, good.length - 1024)]);
    await loadRefused(c, a.subarray(0, 3 * 1024 * 1024), 'InvalidArgument', /not a valid image archive/);
    const failing = Readable.from((async function* () {
      yield a.subarray(0, 2 * 1024 * 1024);
      throw new Error('connection reset');
    })());
    await assert.rejects(c.s.loadImages(failing), /connection reset/);
    await nothingLeft(c);
  });
  await t.test('a refusal does not wait for a client that stopped sending', async () => {
    const stalled = Readable.from((async function* () {
      yield Buffer.alloc(512, 'x'); // not a tar header
      await new Promise(() => {});
    })());
    await assert.rejects(c.s.loadImages(stalled), /not a valid image archive/);
    await nothingLeft(c);
  });
  const capped = await fresh(t, { maxLayerBytes: 1024 * 1024 });
  await t.test('size cap', async () => loadRefused(capped, await dockerArchive('big:v1', [good]), 'ResourceExhausted', /uncompressed size passes the cap/));
});

test('the same extractor copies an archive into a directory: owner, devices skipped, .wh. kept, jail, no dir/non-dir swap', async (t) => {
  const { extractTar, hostTree, underTree, NO_CAPS } = await import('../../src/storage/extract.js');
  const c = await fresh(t);
  const dest = join(c.base, 'dest');
  const outside = join(c.base, 'outside');
  await mkdir(join(dest, 'd'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(dest, 'keep'), 'old');
  await run('ln', ['-s', outside, join(dest, 'ln')]);
  const archive = await tarOf([
    { name: 'd/new', body: 'n', uid: 1000, gid: 1000 },
    { name: '.wh.keep', body: '' },
    { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 },
    { name: 'p', type: 'fifo' },
    { name: 'keep', body: 'new' },
  ]);
  await extractTar(stream(archive), dest, NO_CAPS, { layer: false, owner: { uid: 7, gid: 8 } });
  assert.deepEqual((await readdir(dest)).sort(), ['.wh.keep', 'd', 'keep', 'ln']);
  assert.equal(await readFile(join(dest, 'keep'), 'utf8'), 'new');
  const st = await lstat(join(dest, 'd/new'));
  assert.deepEqual([st.uid, st.gid], [7, 8]);
  await assert.rejects(extractTar(stream(await tarOf([{ name: 'ln/x', body: 'pwned' }])), dest, NO_CAPS, { layer: false }), /symlink "ln"/);
  assert.deepEqual(await readdir(outside), []);
  await assert.rejects(extractTar(stream(await tarOf([{ name: 'd', body: 'file' }])), dest, NO_CAPS, { layer: false, noOverwriteDirNonDir: true }), /cannot overwrite directory "d" with non-directory/);
  assert.ok((await lstat(join(dest, 'd'))).isDirectory());
  // A container root with directories mapped into it (as compute's trees are): entries under mnt/ land in the mapped
  // host directory; a read-only one is refused.
  const mapped = join(c.base, 'mapped');
  await mkdir(mapped);
  await mkdir(join(dest, 'mnt'));
  const host = hostTree('/');
  const hp = (p: string) => (p === '/mnt' || p.startsWith('/mnt/') ? join(mapped, p.slice(4)) : join(dest, p));
  const tree: ExtractTree = {
    lstat: (p) => host.lstat(hp(p)),
    createFile: (p, m) => host.createFile(hp(p), m),
    mkdir: (p, m) => host.mkdir(hp(p), m),
    chmodDir: (p, m) => host.chmodDir(hp(p), m),
    lchown: (p, u, g) => host.lchown(hp(p), u, g),
    symlink: (t, p) => host.symlink(t, hp(p)),
    link: (e, p) => host.link(hp(e), hp(p)),
    lutimes: (p, t) => host.lutimes(hp(p), t),
    remove: (p) => host.remove(hp(p)),
    readOnly: (p) => p === '/ro' || p.startsWith('/ro/'),
  };
  await extractTar(stream(await tarOf([{ name: 'mnt/sub/f', body: 'm' }, { name: 'top', body: 't' }, { name: 'mnt/l', type: 'link', linkname: 'mnt/sub/f' }])), dest, NO_CAPS, { layer: false, tree });
  assert.equal(await readFile(join(mapped, 'sub/f'), 'utf8'), 'm');
  assert.equal((await lstat(join(mapped, 'l'))).ino, (await lstat(join(mapped, 'sub/f'))).ino);
  assert.equal(await readFile(join(dest, 'top'), 'utf8'), 't');
  assert.ok(!existsSync(join(dest, 'mnt/sub')));
  await assert.rejects(extractTar(stream(await tarOf([{ name: 'ro/x', body: 'x' }])), dest, NO_CAPS, { layer: false, tree }), /cannot write to \/ro\/x: it is on a read-only mount/);
  // A tree's subdirectory as the destination.
  await extractTar(stream(await tarOf([{ name: 'deep/f', body: 'u' }])), '', NO_CAPS, { layer: false, tree: underTree(hostTree(c.base), '/dest/d') });
  assert.equal(await readFile(join(dest, 'd/deep/f'), 'utf8'), 'u');
});
