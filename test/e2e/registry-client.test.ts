// The registry client against a real registry (Debian's docker-registry) with TLS and token or Basic auth: no daemon.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Transport, RepoClient } from '../../src/storage/registry/client.js';
import { RegistryHosts } from '../../src/storage/registry/hosts.js';
import { verified } from '../../src/storage/registry/verify.js';
import { PASSWORD, REFRESH_TOKEN, RegistryFixture, USER } from './registry-fixture.js';
import { compress, image, layerTar, pushImage, pushIndex } from './registry-images.js';
import { selectPlatform, parsePlatform } from '../../src/storage/registry/media.js';

const tokenReg = new RegistryFixture('token');
const basicReg = new RegistryFixture('htpasswd');
const t = new Transport({ timeoutMs: 3000, userAgent: 'silo-test' });

before(async () => {
  await Promise.all([tokenReg.start(), basicReg.start()]);
});
after(async () => {
  await t.close();
  await Promise.all([tokenReg.teardown(), basicReg.teardown()]);
});

async function client(reg: RegistryFixture, path: string, actions: ('pull' | 'push')[], creds = true): Promise<RepoClient> {
  const hosts = new RegistryHosts({ mirrors: {}, insecure: [], certsDir: reg.certsDir });
  const [ep] = await hosts.endpoints(reg.host);
  return new RepoClient(t, ep, path, actions, creds ? { username: USER, password: PASSWORD } : undefined);
}

test('token auth: push with credentials, pull anonymously, tokens reused until expiry', async () => {
  const l = compress(await layerTar({ 'hello.txt': 'hello\n' }), 'gzip', false);
  const img = image([l]);
  const push = await client(tokenReg, 'silo/one', ['pull', 'push']);
  await pushImage(push, img, 'v1');
  const seen = tokenReg.tokenRequests.length;
  const pull = await client(tokenReg, 'silo/one', ['pull'], false);
  const m = await pull.getManifest('v1');
  assert.equal(m.digest, img.manifestDigest);
  assert.equal(m.manifest.kind, 'manifest');
  const chunks: Buffer[] = [];
  for await (const c of verified(await pull.getBlob(l.desc, 'layer'), l.desc, 'layer')) chunks.push(c);
  assert.deepEqual(Buffer.concat(chunks), l.blob);
  // One token for the anonymous pull scope, reused for the manifest and the blob.
  assert.equal(tokenReg.tokenRequests.length, seen + 1);
  assert.equal(tokenReg.tokenRequests.at(-1)!.user, undefined);
  await assert.rejects(pull.startUpload(l.desc.digest), /denied|unauthorized/);
});

test('token auth: wrong password is refused in one line', async () => {
  const hosts = new RegistryHosts({ mirrors: {}, insecure: [], certsDir: tokenReg.certsDir });
  const [ep] = await hosts.endpoints(tokenReg.host);
  const c = new RepoClient(t, ep, 'silo/one', ['pull'], { username: USER, password: 'wrong' });
  await assert.rejects(c.getManifest('v1'), /incorrect username or password/);
});

test('basic auth: push and pull; anonymous pull refused', async () => {
  const l = compress(await layerTar({ 'a.txt': 'a\n' }), 'zstd', true);
  const img = image([l], { oci: true });
  await pushImage(await client(basicReg, 'silo/two', ['pull', 'push']), img, 'latest');
  const m = await (await client(basicReg, 'silo/two', ['pull'])).getManifest(img.manifestDigest);
  assert.equal(m.digest, img.manifestDigest);
  await assert.rejects((await client(basicReg, 'silo/two', ['pull'], false)).getManifest('latest'), /access denied/);
});

test('an index: platform selection and a clear error for a missing platform', async () => {
  const c = await client(tokenReg, 'silo/multi', ['pull', 'push']);
  const amd = image([compress(await layerTar({ 'arch': 'amd64\n' }), 'gzip', true)], { oci: true, arch: 'amd64' });
  const arm = image([compress(await layerTar({ 'arch': 'arm64\n' }), 'gzip', true)], { oci: true, arch: 'arm64' });
  await pushIndex(c, [{ img: amd, platform: { os: 'linux', architecture: 'amd64' } }, { img: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }], 'multi');
  const m = await c.getManifest('multi');
  assert.equal(m.manifest.kind, 'index');
  if (m.manifest.kind !== 'index') return;
  assert.equal(selectPlatform(m.manifest, parsePlatform('linux/arm64')).digest, arm.manifestDigest);
  assert.equal(selectPlatform(m.manifest, parsePlatform('linux/amd64')).digest, amd.manifestDigest);
  assert.throws(() => selectPlatform(m.manifest as never, parsePlatform('linux/s390x')), /no matching manifest for linux\/s390x/);
});

test('a token server that never answers: a timeout and a clear error', async () => {
  const reg = new RegistryFixture('token');
  await reg.start();
  try {
    reg.tokenHangs = true;
    const hosts = new RegistryHosts({ mirrors: {}, insecure: [], certsDir: reg.certsDir });
    const [ep] = await hosts.endpoints(reg.host);
    const short = new Transport({ timeoutMs: 1000, userAgent: 'silo-test' });
    const c = new RepoClient(short, ep, 'silo/x', ['pull']);
    await assert.rejects(c.getManifest('latest'), /token server 127\.0\.0\.1:\d+ for .*: no answer within 1 s/);
    await short.close();
  } finally {
    await reg.teardown();
  }
});

test('chunked upload: PATCH per chunk with Content-Range, then PUT with the digest', async () => {
  const l = compress(await layerTar({ 'big.bin': Buffer.alloc(300_000, 7) }), 'none', true);
  const c = await client(tokenReg, 'silo/chunked', ['pull', 'push']);
  const u = await c.startUpload(l.desc.digest);
  assert.equal(u.mounted, false);
  if (u.mounted) return;
  async function* pieces() {
    for (let o = 0; o < l.blob.length; o += 100_000) yield l.blob.subarray(o, o + 100_000);
  }
  await c.putBlobChunked(u.location, l.desc, pieces());
  assert.ok(await c.hasBlob(l.desc.digest));
  const got: Buffer[] = [];
  for await (const b of verified(await c.getBlob(l.desc, 'layer'), l.desc, 'layer')) got.push(b);
  assert.deepEqual(Buffer.concat(got), l.blob);
});

test('TLS: a CA from certs.d is trusted for its host; without it a verified endpoint refuses in one line', async () => {
  const hosts = new RegistryHosts({ mirrors: {}, insecure: [], certsDir: tokenReg.certsDir });
  const [ep] = await hosts.endpoints(tokenReg.host);
  assert.ok(ep.ca?.length, 'certs.d/<host>/ca.crt read');
  // Loopback is insecure by default (as docker): check verification itself with it switched on.
  const strict = new Transport({ timeoutMs: 3000, userAgent: 'silo-test' });
  try {
    await new RepoClient(strict, { ...ep, insecure: false }, 'silo/one', ['pull']).getManifest('v1');
    const bare = new RepoClient(strict, { ...ep, insecure: false, ca: undefined }, 'silo/one', ['pull']);
    await assert.rejects(bare.getManifest('v1'), /TLS certificate not trusted .*certs\.d/);
  } finally {
    await strict.close();
  }
});

test('token auth with an identity token (OAuth2 refresh-token grant), as the CRI and docker send them', async () => {
  const hosts = new RegistryHosts({ mirrors: {}, insecure: [], certsDir: tokenReg.certsDir });
  const [ep] = await hosts.endpoints(tokenReg.host);
  const l = compress(await layerTar({ 'id.txt': 'identity\n' }), 'gzip', true);
  const c = new RepoClient(t, ep, 'silo/identity', ['pull', 'push'], { username: '', password: '', identityToken: REFRESH_TOKEN });
  await pushImage(c, image([l], { oci: true }), 'v1');
  assert.equal(tokenReg.tokenRequests.at(-1)!.user, USER);
  const wrong = new RepoClient(t, ep, 'silo/identity2', ['pull', 'push'], { username: '', password: '', identityToken: 'nope' });
  await assert.rejects(wrong.startUpload(l.desc.digest), /incorrect username or password|unauthorized/);
});
