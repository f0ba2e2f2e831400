// Mirrors as containerd's hosts.toml tries them: two local registries (A and B, plain HTTP on loopback), each behind a
// proxy that can answer 404 for chosen blobs. The registry the images are named by is proxy B; its mirrors are proxy A,
// then B directly. A mirror that lacks the manifest or a blob does not fail the pull: the next host serves it, then
// the registry itself; a blob no host has fails in one line and keeps nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDaemon } from './harness.js';
import { FaultProxy, RegistryFixture } from './registry-fixture.js';
import { busyboxLayer, compress, image, layerTar, pushImage, type BuiltImage } from './registry-images.js';
import { Transport, RepoClient } from '../../src/storage/registry/client.js';

const regA = new RegistryFixture('none', false);
const regB = new RegistryFixture('none', false);
let proxyA: FaultProxy;
let proxyB: FaultProxy;
const d = new TestDaemon();
const t = new Transport({ timeoutMs: 5000, userAgent: 'silo-test' });
let both: BuiltImage;
let onlyA: BuiltImage;

const client = (reg: RegistryFixture, path: string) => new RepoClient(t, { base: `http://${reg.host}`, host: reg.host, insecure: true, mirror: false }, path, ['pull', 'push']);
const blobs = async () => (await readdir(join(d.stateDir, 'storage/blobs/sha256'))).sort();
const ingest = async () => readdir(join(d.stateDir, 'storage/blobs/ingest'));
const gets = (p: FaultProxy, what: string) => p.seen.filter((s) => s.startsWith('GET ') && s.includes(what)).length;

before(async () => {
  await Promise.all([regA.start(), regB.start()]);
  proxyA = new FaultProxy(regA.port);
  proxyB = new FaultProxy(regB.port);
  await Promise.all([proxyA.start(), proxyB.start()]);
  const hostsFile = join(regA.dir, 'registries.json');
  writeFileSync(hostsFile, JSON.stringify({ mirrors: { [proxyB.host]: [`http://${proxyA.host}`, `http://${regB.host}`] } }));
  await d.start({ SILO_REGISTRY_CONFIG: hostsFile, SILO_REGISTRY_TIMEOUT: '5' });
  const bb = compress(await busyboxLayer(), 'gzip', false);
  both = image([bb, compress(await layerTar({ 'm.txt': 'from a mirror\n' }), 'gzip', false)], { cmd: ['/bin/cat', '/m.txt'] });
  onlyA = image([bb, compress(await layerTar({ 'a.txt': 'only on A\n' }), 'gzip', false)], { cmd: ['/bin/cat', '/a.txt'] });
  await pushImage(client(regA, 'silo/m'), both, 'v1');
  await pushImage(client(regB, 'silo/m'), both, 'v1');
  await pushImage(client(regB, 'silo/bonly'), both, 'v1');
  await pushImage(client(regA, 'silo/aonly'), onlyA, 'v1');
});

after(async () => {
  await t.close();
  const left = await d.teardown();
  await Promise.all([proxyA.stop(), proxyB.stop()]);
  await Promise.all([regA.teardown(), regB.teardown()]);
  assert.deepEqual(left, []);
});

test('a mirror that lacks a blob: the next host serves it, the registry itself is not asked', async () => {
  const layer2 = both.layers[1].desc.digest;
  proxyA.fault = { kind: 'missing', digests: [layer2] };
  proxyA.seen.length = proxyB.seen.length = 0;
  const r = await d.silo(['pull', `${proxyB.host}/silo/m:v1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(gets(proxyA, '/manifests/v1'), 1, 'the manifest came from the first mirror');
  assert.equal(gets(proxyA, `/blobs/${layer2}`), 1, 'the first mirror was asked for the blob');
  assert.equal(gets(proxyA, `/blobs/${both.layers[0].desc.digest}`), 1, 'the blob it has came from it');
  assert.equal(proxyB.seen.length, 0, 'the second mirror had it: the registry itself was not asked');
  const run = await d.silo(['run', '--rm', `${proxyB.host}/silo/m:v1`]);
  assert.equal(run.stdout, 'from a mirror\n', run.stderr);
  assert.equal((await d.silo(['rmi', `${proxyB.host}/silo/m:v1`])).code, 0);
});

test('a mirror that lacks the manifest: the next host serves the image', async () => {
  proxyA.fault = undefined;
  proxyA.seen.length = proxyB.seen.length = 0;
  const r = await d.silo(['pull', `${proxyB.host}/silo/bonly:v1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(gets(proxyA, '/silo/bonly/manifests/v1'), 1, 'the first mirror was asked');
  assert.equal(proxyB.seen.length, 0);
  assert.equal((await d.silo(['rmi', `${proxyB.host}/silo/bonly:v1`])).code, 0);
});

test('every host lacks a blob: the registry itself is asked last, the pull fails in one line and keeps nothing', async () => {
  const layer2 = onlyA.layers[1].desc.digest;
  proxyA.fault = { kind: 'missing', digests: [layer2] };
  proxyA.seen.length = proxyB.seen.length = 0;
  const b = await blobs();
  const r = await d.silo(['pull', `${proxyB.host}/silo/aonly:v1`]);
  assert.equal(r.code, 125, r.stdout);
  assert.match(r.stderr, new RegExp(`no such blob: ${layer2}`));
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.equal(gets(proxyB, `/blobs/${layer2}`), 1, 'the registry itself was asked last');
  assert.deepEqual(await blobs(), b, 'no blob kept');
  assert.deepEqual(await ingest(), []);
  assert.equal((await d.silo(['images', '-q', `${proxyB.host}/silo/aonly`])).stdout, '');
});
