// The registry client's pure parts: manifests and platform selection, WWW-Authenticate challenges, hosts and mirrors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenges, repoScope } from '../../src/storage/registry/challenge.js';
import { MT, parseManifest, parsePlatform, selectPlatform, layerCompression, MAX_MANIFEST_BYTES, type ImageIndex } from '../../src/storage/registry/media.js';
import { isLoopbackHost, parseMirror, parseMirrorFlag, RegistryHosts } from '../../src/storage/registry/hosts.js';
import { registryKey } from '../../src/storage/registry/credentials.js';

const D = (c: string) => 'sha256:' + c.repeat(64);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

test('challenges: bearer with quoted params, basic, several in one header', () => {
  const [b] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
  assert.deepEqual(b, { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } });
  assert.deepEqual(parseChallenges('Basic realm="x \\"y\\"", Bearer realm=http://t/token'), [
    { scheme: 'basic', params: { realm: 'x "y"' } },
    { scheme: 'bearer', params: { realm: 'http://t/token' } },
  ]);
  assert.deepEqual(parseChallenges(undefined), []);
  assert.equal(repoScope('library/busybox', ['pull', 'push']), 'repository:library/busybox:pull,push');
});

test('manifests: docker v2, OCI without mediaType, index; schema 1 and oversize refused in one line', () => {
  const m = parseManifest(json({ schemaVersion: 2, mediaType: MT.dockerManifest, config: { mediaType: MT.dockerConfig, digest: D('a'), size: 2 }, layers: [{ mediaType: MT.dockerLayerGzip, digest: D('b'), size: 3 }] }), undefined);
  assert.equal(m.kind, 'manifest');
  const o = parseManifest(json({ schemaVersion: 2, config: { mediaType: MT.ociConfig, digest: D('a'), size: 2 }, layers: [] }), 'application/json');
  assert.equal(o.mediaType, MT.ociManifest);
  const i = parseManifest(json({ schemaVersion: 2, manifests: [] }), MT.ociIndex);
  assert.equal(i.kind, 'index');
  assert.throws(() => parseManifest(json({ schemaVersion: 1, name: 'x' }), MT.dockerSchema1Signed), /schema 1 is not supported/);
  assert.throws(() => parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 32), undefined), /over the 4 MiB limit/);
  assert.throws(() => parseManifest(json({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: 'md5:x', size: 1 }, layers: [] }), undefined), /no sha256 digest/);
  assert.throws(() => parseManifest(Buffer.from('{nope'), undefined), /not JSON/);
});

test('layer media types: gzip, zstd, plain, foreign; others refused', () => {
  assert.equal(layerCompression({ mediaType: MT.ociLayerZstd, digest: D('a'), size: 1 }), 'zstd');
  assert.equal(layerCompression({ mediaType: MT.dockerForeignGzip, digest: D('a'), size: 1 }), 'gzip');
  assert.equal(layerCompression({ mediaType: MT.ociLayer, digest: D('a'), size: 1 }), 'none');
  assert.throws(() => layerCompression({ mediaType: 'application/x-nope', digest: D('a'), size: 1 }), /unsupported media type/);
});

test('platforms: parse, select, variants, attestations, a clear error', () => {
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.throws(() => parsePlatform('linux/amd64/v2/x'), /invalid platform/);
  const e = (d: string, os: string, architecture: string, variant?: string) => ({ mediaType: MT.ociManifest, digest: D(d), size: 1, platform: { os, architecture, ...(variant ? { variant } : {}) } });
  const idx: ImageIndex = { kind: 'index', mediaType: MT.ociIndex, manifests: [e('u', 'unknown', 'unknown'), e('a', 'linux', 'amd64'), e('6', 'linux', 'arm', 'v6'), e('7', 'linux', 'arm', 'v7'), e('8', 'linux', 'arm64', 'v8')] };
  assert.equal(selectPlatform(idx, parsePlatform('linux/amd64')).digest, D('a'));
  assert.equal(selectPlatform(idx, parsePlatform('linux/arm/v7')).digest, D('7'));
  assert.equal(selectPlatform(idx, parsePlatform('linux/arm64')).digest, D('8'));
  assert.throws(() => selectPlatform(idx, parsePlatform('linux/ppc64le')), /no matching manifest for linux\/ppc64le .*linux\/amd64, linux\/arm\/v6/);
});

test('hosts: mirrors first, loopback insecure, mirror flags, registry keys', async () => {
  assert.equal(parseMirror('https://m.example:5000/v2/'), 'https://m.example:5000');
  assert.equal(parseMirror('127.0.0.1:5000'), 'https://127.0.0.1:5000');
  assert.throws(() => parseMirror('ftp://x'), /only http and https/);
  assert.deepEqual(parseMirrorFlag('http://127.0.0.1:5000'), { host: 'docker.io', url: 'http://127.0.0.1:5000' });
  assert.deepEqual(parseMirrorFlag('registry.k8s.io=http://127.0.0.1:5000'), { host: 'registry.k8s.io', url: 'http://127.0.0.1:5000' });
  assert.ok(isLoopbackHost('localhost:5000') && isLoopbackHost('127.0.0.1') && isLoopbackHost('[::1]:5000'));
  assert.ok(!isLoopbackHost('example.com'));
  const h = new RegistryHosts({ mirrors: { 'docker.io': ['http://127.0.0.1:5000'] }, insecure: ['reg.lan:5000'], certsDir: '/nonexistent' });
  assert.deepEqual((await h.endpoints('docker.io')).map((e) => e.base), ['http://127.0.0.1:5000', 'https://registry-1.docker.io']);
  assert.deepEqual((await h.endpoints('reg.lan:5000')).map((e) => e.base), ['https://reg.lan:5000', 'http://reg.lan:5000']);
  const only = new RegistryHosts({ mirrors: { 'gcr.io': ['https://127.0.0.1:5001'] }, insecure: [], certsDir: '/nonexistent', fallbackToUpstream: false });
  assert.deepEqual((await only.endpoints('gcr.io')).map((e) => e.base), ['https://127.0.0.1:5001']);
  assert.equal(registryKey('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(registryKey(undefined), 'docker.io');
  assert.equal(registryKey('https://LocalHost:5000/v2/'), 'localhost:5000');
  assert.throws(() => registryKey('a b'), /invalid registry address/);
});
