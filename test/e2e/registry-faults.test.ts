// A registry that misbehaves, and a pull that is interrupted: each failure is one line naming what failed, and
// leaves no image and no blob behind (checked on disk), including after a daemon killed mid-pull restarts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from './harness.js';
import { FaultProxy, RegistryFixture } from './registry-fixture.js';
import { busyboxLayer, compress, image, layerTar, pushBlob, pushImage, type BuiltImage } from './registry-images.js';
import { MT } from '../../src/storage/registry/media.js';
import { createServer } from 'node:http';
import { Transport, RepoClient } from '../../src/storage/registry/client.js';
import { RegistryHosts } from '../../src/storage/registry/hosts.js';

const plain = new RegistryFixture('none', false);
const slowToken = new RegistryFixture('token');
let proxy: FaultProxy;
const d = new TestDaemon();
const t = new Transport({ timeoutMs: 5000, userAgent: 'silo-test' });
let img: BuiltImage;

const blobs = async () => (await readdir(join(d.stateDir, 'storage/blobs/sha256'))).sort();
const ingest = async () => readdir(join(d.stateDir, 'storage/blobs/ingest'));
const images = async () => (await d.silo(['images', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean).sort();

before(async () => {
  await Promise.all([plain.start(), slowToken.start()]);
  proxy = new FaultProxy(plain.port);
  await proxy.start();
  await d.start({ SILO_CERTS_DIR: slowToken.certsDir, SILO_REGISTRY_TIMEOUT: '1' });
  const [ep] = await new RegistryHosts({ mirrors: {}, insecure: [], certsDir: '/nonexistent' }).endpoints(plain.host);
  const c = new RepoClient(t, { ...ep, base: `http://${plain.host}` }, 'silo/f', ['pull', 'push']);
  img = image([compress(await busyboxLayer(), 'gzip', false), compress(await layerTar({ 'f.txt': 'fault\n'.repeat(50_000) }), 'gzip', false)], { cmd: ['/bin/cat', '/f.txt'] });
  await pushImage(c, img, 'v1');
});

after(async () => {
  await t.close();
  const left = await d.teardown();
  await proxy.stop();
  await Promise.all([plain.teardown(), slowToken.teardown()]);
  assert.deepEqual(left, []);
});

async function failsCleanly(args: string[], pattern: RegExp): Promise<void> {
  const b = await blobs();
  const i = await images();
  const r = await d.silo(args);
  assert.equal(r.code, 125, r.stdout);
  assert.match(r.stderr, pattern);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.deepEqual(await blobs(), b, 'no blob kept');
  assert.deepEqual(await ingest(), [], 'no half-written blob');
  assert.deepEqual(await images(), i, 'no image made');
}

test('a registry that drops the connection mid-blob: the blob is named, nothing is kept', async () => {
  const layer = img.layers[1].desc.digest;
  proxy.fault = { kind: 'drop', digest: layer };
  await failsCleanly(['pull', `${proxy.host}/silo/f:v1`], new RegExp(`layer 2 ${layer}.*(connection dropped|download failed|truncated)`));
});

test('a blob whose bytes do not match its digest is refused and not kept', async () => {
  const layer = img.layers[1].desc.digest;
  proxy.fault = { kind: 'corrupt', digest: layer };
  await failsCleanly(['pull', `${proxy.host}/silo/f:v1`], new RegExp(`${layer}.*digest mismatch`));
});

test('a manifest over 4 MiB is refused', async () => {
  proxy.fault = { kind: 'huge-manifest', ref: 'v1' };
  await failsCleanly(['pull', `${proxy.host}/silo/f:v1`], /manifest .* refused: .*over the 4 MiB limit/);
});

test('a layer of an unknown media type is refused in one line (schema 1: test/unit/registry-pure)', async () => {
  proxy.fault = undefined;
  const [ep] = await new RegistryHosts({ mirrors: {}, insecure: [], certsDir: '/nonexistent' }).endpoints(plain.host);
  const c = new RepoClient(t, { ...ep, base: `http://${plain.host}` }, 'silo/f', ['pull', 'push']);
  // The registry stores an OCI manifest with any layer type; Silo refuses to pull one it cannot unpack.
  const odd = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: img.configDesc, layers: [{ ...img.layers[0].desc, mediaType: 'application/x-unknown' }] }));
  await c.putManifest('odd', odd, 'application/vnd.oci.image.manifest.v1+json');
  await failsCleanly(['pull', `${proxy.host}/silo/f:odd`], /layer 1 has unsupported media type "application\/x-unknown"/);
});

test('a hostile layer (a file written through a symlink) is refused by the extractor in one line; nothing is kept', async () => {
  proxy.fault = undefined;
  const [ep] = await new RegistryHosts({ mirrors: {}, insecure: [], certsDir: '/nonexistent' }).endpoints(plain.host);
  const c = new RepoClient(t, { ...ep, base: `http://${plain.host}` }, 'silo/f', ['pull', 'push']);
  const bad = image([compress(await layerTar({ x: { link: '/etc' }, 'x/passwd': 'evil\n' }), 'gzip', false)]);
  await pushImage(c, bad, 'hostile');
  await failsCleanly(['pull', `${proxy.host}/silo/f:hostile`], /refused entry "x\/passwd": its path passes through the symlink "x"/);
});

test('a blob redirect to another origin is followed (and the pull completes)', async () => {
  const layer = img.layers[1].desc.digest;
  proxy.fault = { kind: 'redirect', digest: layer };
  const r = await d.silo(['pull', `${proxy.host}/silo/f:v1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await d.silo(['rmi', `${proxy.host}/silo/f:v1`])).code, 0);
});

test('a foreign layer the registry does not hold is fetched from its URLs (as docker does); push leaves it out', async () => {
  proxy.fault = undefined;
  // The layer blob lives only on a plain web server; the manifest names it with a foreign media type and a URL.
  const foreign = compress(await layerTar({ 'foreign.txt': 'from elsewhere\n' }), 'gzip', false);
  const web = createServer((req, res) => (req.url === '/layer.tgz' ? res.writeHead(200, { 'content-length': foreign.blob.length }).end(foreign.blob) : res.writeHead(404).end()));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(web.address() as { port: number }).port}/layer.tgz`;
    const fl = { ...foreign, desc: { ...foreign.desc, mediaType: MT.dockerForeignGzip, urls: [url] } };
    const withForeign = image([img.layers[0], fl], { cmd: ['/bin/cat', '/foreign.txt'] });
    const [ep] = await new RegistryHosts({ mirrors: {}, insecure: [], certsDir: '/nonexistent' }).endpoints(plain.host);
    const c = new RepoClient(t, { ...ep, base: `http://${plain.host}` }, 'silo/foreign', ['pull', 'push']);
    await pushBlob(c, img.layers[0].desc, img.layers[0].blob);
    await pushBlob(c, withForeign.configDesc, withForeign.config);
    await c.putManifest('v1', withForeign.manifest, withForeign.mediaType);
    assert.equal(await c.hasBlob(foreign.desc.digest), false);
    const r = await d.silo(['run', '--rm', `${proxy.host}/silo/foreign:v1`]);
    assert.equal(r.stdout, 'from elsewhere\n', r.stderr);
    // Pushed elsewhere: the foreign layer is not uploaded (docker does not push non-distributable layers).
    assert.equal((await d.silo(['tag', `${proxy.host}/silo/foreign:v1`, `${proxy.host}/silo/foreign2:v1`])).code, 0);
    const p = await d.silo(['push', `${proxy.host}/silo/foreign2:v1`]);
    assert.equal(p.code, 0, p.stderr);
    assert.ok(!p.stdout.includes(foreign.desc.digest.slice(7, 19)), p.stdout);
    assert.equal(await c.hasBlob(foreign.desc.digest), false);
    await d.silo(['rmi', `${proxy.host}/silo/foreign:v1`, `${proxy.host}/silo/foreign2:v1`]);
  } finally {
    web.closeAllConnections();
    await new Promise((r) => web.close(r));
  }
});

test('a token server that never answers: the pull times out with a clear error', async () => {
  slowToken.tokenHangs = true;
  await failsCleanly(['pull', `${slowToken.host}/silo/x:v1`], /token server 127\.0\.0\.1:\d+ .*no answer within 1 s/);
});

test('a daemon killed mid-pull leaves no image and no blob after its restart; pulling again works', async () => {
  proxy.fault = undefined;
  const b = await blobs();
  const i = await images();
  await d.stop();
  await d.start({ SILO_CERTS_DIR: slowToken.certsDir, SILO_FAULT_POINTS: 'pull.before-image' });
  const r = await d.silo(['pull', `${proxy.host}/silo/f:v1`]);
  assert.notEqual(r.code, 0);
  await d.exited();
  await d.start({ SILO_CERTS_DIR: slowToken.certsDir });
  assert.deepEqual(await blobs(), b);
  assert.deepEqual(await ingest(), []);
  assert.deepEqual(await images(), i);
  const ok = await d.silo(['pull', `${proxy.host}/silo/f:v1`]);
  assert.equal(ok.code, 0, ok.stderr);
  const run = await d.silo(['run', '--rm', `${proxy.host}/silo/f:v1`]);
  assert.equal(run.stdout.length, 'fault\n'.length * 50_000, run.stderr);
  // rmi takes the image's blobs with it (the base image's stay).
  assert.equal((await d.silo(['rmi', `${proxy.host}/silo/f:v1`])).code, 0);
  assert.deepEqual(await blobs(), b);
});
