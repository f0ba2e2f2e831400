// The unmodified docker CLI and dockerode pull, push and log in through Silo's Docker API against a real registry
// (docker-registry, TLS from a test CA, token auth); mirrors let docker.io and registry.k8s.io names come from it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { DockerFixture } from './docker-fixture.js';
import { runProcess } from './harness.js';
import { PASSWORD, RegistryFixture, USER } from './registry-fixture.js';
import { busyboxLayer, compress, image, layerTar, pushImage, pushIndex, type BuiltImage } from './registry-images.js';
import { Transport, RepoClient } from '../../src/storage/registry/client.js';
import { RegistryHosts } from '../../src/storage/registry/hosts.js';

const reg = new RegistryFixture('token');
const fx = new DockerFixture();
const t = new Transport({ timeoutMs: 5000, userAgent: 'silo-test' });
const config = mkdtempSync('/tmp/silo-test-docker-config-');
let docker: Docker;
let app: BuiltImage;

async function client(path: string): Promise<RepoClient> {
  const [ep] = await new RegistryHosts({ mirrors: {}, insecure: [], certsDir: reg.certsDir }).endpoints(reg.host);
  return new RepoClient(t, ep, path, ['pull', 'push'], { username: USER, password: PASSWORD });
}

/** docker with its own config dir (credentials docker login saves). */
const dk = (args: string[], input?: string) => fx.run(['env', `DOCKER_CONFIG=${config}`, 'docker', ...args.map((a) => `'${a}'`)], { shell: true, input });

before(async () => {
  await reg.start();
  const hostsFile = join(reg.dir, 'registries.json');
  // docker.io and registry.k8s.io served by the local registry only (no upstream: nothing outside is reachable).
  writeFileSync(hostsFile, JSON.stringify({ mirrors: { 'docker.io': [`https://${reg.host}`], 'registry.k8s.io': [`https://${reg.host}`] }, fallbackToUpstream: false }));
  await fx.start({ SILO_CERTS_DIR: reg.certsDir, SILO_REGISTRY_CONFIG: hostsFile, SILO_REGISTRY_TIMEOUT: '5' });
  docker = new Docker({ socketPath: `${fx.d.runDir}/docker.sock` });
  const bb = compress(await busyboxLayer(), 'gzip', false);
  app = image([bb, compress(await layerTar({ 'msg': 'from docker\n' }), 'gzip', false)], { cmd: ['/bin/cat', '/msg'] });
  await pushImage(await client('silo/app'), app, 'v1');
  await pushImage(await client('silo/run'), app, 'latest');
  await pushImage(await client('silo/base'), app, '1');
  await pushImage(await client('silo/tags'), app, 'one');
  await pushImage(await client('silo/tags'), image([bb], { cmd: ['/bin/sh'] }), 'two');
  await pushImage(await client('library/mirrored'), app, '1.0');
  await pushImage(await client('pause'), image([bb], { cmd: ['/bin/sh'] }), '3.9');
  const arm = image([compress(await layerTar({ 'a': 'arm\n' }), 'gzip', true)], { oci: true, arch: 'arm64' });
  await pushIndex(await client('silo/multi'), [{ img: arm, platform: { os: 'linux', architecture: 'arm64' } }], 'latest');
});

after(async () => {
  await t.close();
  const left = await fx.teardown();
  await reg.teardown();
  rmSync(config, { recursive: true, force: true });
  assert.deepEqual(left, []);
});

test('docker pull: per-layer lines, digest, status; docker images shows it', async () => {
  const r = await dk(['pull', `${reg.host}/silo/app:v1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /v1: Pulling from silo\/app/);
  assert.match(r.stdout, /[0-9a-f]{12}: Pull complete/);
  assert.match(r.stdout, new RegExp(`Digest: ${app.manifestDigest}`));
  assert.match(r.stdout, new RegExp(`Status: Downloaded newer image for ${reg.host}/silo/app:v1`));
  const imgs = await dk(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  assert.match(imgs.stdout, new RegExp(`${reg.host}/silo/app:v1 ${app.configDesc.digest.slice(7, 19)}`));
  const dist = await runProcess('curl', ['-sS', '--unix-socket', `${fx.d.runDir}/docker.sock`, `http://d/v1.50/distribution/${reg.host}/silo/app:v1/json`]);
  assert.equal(JSON.parse(dist.stdout || JSON.stringify(dist)).Descriptor?.digest, app.manifestDigest, dist.stdout + dist.stderr);
});

test('docker images host:port/repo and --filter reference=host:port/repo:* match names with a registry host and port', async () => {
  assert.equal((await dk(['pull', `${reg.host}/silo/app:v1`])).code, 0);
  assert.equal((await dk(['tag', `${reg.host}/silo/app:v1`, `${reg.host}/silo/app:v2`])).code, 0);
  assert.equal((await dk(['tag', `${reg.host}/silo/app:v1`, `${reg.host}/silo/other:x`])).code, 0);
  assert.equal((await dk(['tag', `${reg.host}/silo/app:v1`, `localhost:5999/silo/app:v1`])).code, 0);
  const names = async (...args: string[]) => {
    const r = await dk(['images', '--format', '{{.Repository}}:{{.Tag}}', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  const app = [`${reg.host}/silo/app:v1`, `${reg.host}/silo/app:v2`];
  assert.deepEqual(await names(`${reg.host}/silo/app`), app);
  assert.deepEqual(await names(`${reg.host}/silo/app:v2`), [`${reg.host}/silo/app:v2`]);
  assert.deepEqual(await names('--filter', `reference=${reg.host}/silo/app:*`), app);
  assert.deepEqual(await names('--filter', `reference=${reg.host}/silo/*`), [...app, `${reg.host}/silo/other:x`]);
  assert.deepEqual(await names('--filter', `reference=${reg.host}/*/app:v?`), app);
  assert.deepEqual(await names('--filter', 'reference=localhost:5999/silo/app'), ['localhost:5999/silo/app:v1']);
  assert.deepEqual(await names('--filter', 'reference=*/silo/app:v1'), [`${reg.host}/silo/app:v1`, 'localhost:5999/silo/app:v1']);
  assert.deepEqual(await names('--filter', 'reference=*/app:v1'), []); // * never crosses a /
  const silo = await fx.d.silo(['images', '--format', '{{.Repository}}:{{.Tag}}', `${reg.host}/silo/app`]);
  assert.deepEqual(silo.stdout.split('\n').filter(Boolean).sort(), app, silo.stderr);
  assert.equal((await dk(['rmi', `${reg.host}/silo/app:v2`, `${reg.host}/silo/other:x`, 'localhost:5999/silo/app:v1'])).code, 0);
});

test('docker search answers a clear "not supported" in one line', async () => {
  const r = await dk(['search', 'busybox']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /does not support searching registries/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('docker run of a missing image: the CLI\'s 404 → pull → create flow', async () => {
  const r = await dk(['run', '--rm', `${reg.host}/silo/run`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'from docker\n');
  assert.match(r.stderr, /Unable to find image .* locally/);
});

test('docker build pulls a FROM image that is not here', async () => {
  const ctx = mkdtempSync('/tmp/silo-test-build-ctx-');
  try {
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${reg.host}/silo/base:1\nCMD ["/bin/cat", "/msg"]\n`);
    const b = await dk(['build', '-t', 'silo-test-built', ctx]);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /Pulling from silo\/base/);
    const r = await dk(['run', '--rm', 'silo-test-built']);
    assert.equal(r.stdout, 'from docker\n', r.stderr);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
});

test('docker.io and registry.k8s.io names come from their mirror', async () => {
  const r = await dk(['pull', 'mirrored:1.0']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Status: Downloaded newer image for mirrored:1\.0/);
  const p = await dk(['pull', 'registry.k8s.io/pause:3.9']);
  assert.equal(p.code, 0, p.stderr);
  const missing = await dk(['pull', 'nosuchimage']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Error response from daemon: manifest for nosuchimage:latest not found|pull access denied for nosuchimage/);
});

test('docker pull --all-tags pulls every tag', async () => {
  const r = await dk(['pull', '--all-tags', `${reg.host}/silo/tags`]);
  assert.equal(r.code, 0, r.stderr);
  const imgs = (await dk(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((l) => l.includes('/silo/tags:')).sort();
  assert.deepEqual(imgs, [`${reg.host}/silo/tags:one`, `${reg.host}/silo/tags:two`]);
});

test('docker pull --platform of a platform the index lacks: one clear line', async () => {
  const r = await dk(['pull', '--platform', 'linux/amd64', `${reg.host}/silo/multi`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no matching manifest for linux\/amd64 in the manifest list entries/);
});

test('docker login (wrong and right password), push to a new repository, logout', async () => {
  const bad = await dk(['login', '-u', USER, '--password-stdin', reg.host], 'nope\n');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /incorrect username or password/);
  const ok = await dk(['login', '-u', USER, '--password-stdin', reg.host], `${PASSWORD}\n`);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Login Succeeded/);
  assert.equal((await dk(['tag', `${reg.host}/silo/app:v1`, `${reg.host}/silo/pushed:v2`])).code, 0);
  const p = await dk(['push', `${reg.host}/silo/pushed:v2`]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, new RegExp(`v2: digest: ${app.manifestDigest} size: ${app.manifest.length}`));
  assert.equal((await client('silo/pushed').then((c) => c.getManifest('v2'))).digest, app.manifestDigest);
  // --all-tags: every local tag of the repository.
  assert.equal((await dk(['tag', `${reg.host}/silo/app:v1`, `${reg.host}/silo/pushed:v3`])).code, 0);
  const all = await dk(['push', '--all-tags', `${reg.host}/silo/pushed`]);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /v2: digest: sha256:[0-9a-f]{64}/);
  assert.match(all.stdout, /v3: digest: sha256:[0-9a-f]{64}/);
  assert.equal((await client('silo/pushed').then((c) => c.getManifest('v3'))).digest, app.manifestDigest);
  assert.equal((await dk(['logout', reg.host])).code, 0);
  const anon = await dk(['push', `${reg.host}/silo/pushed:v2`]);
  assert.equal(anon.code, 1);
  assert.match(anon.stderr, /denied|unauthorized/);
});

test('dockerode: pull with progress events, push with auth', async () => {
  const events: { status?: string; id?: string }[] = [];
  const stream = await docker.pull(`${reg.host}/silo/app:v1`);
  await new Promise<void>((res, rej) => docker.modem.followProgress(stream, (e: Error | null) => (e ? rej(e) : res()), (ev: { status?: string }) => events.push(ev)));
  assert.ok(events.some((e) => /Digest: sha256:/.test(e.status ?? '')));
  await docker.getImage(`${reg.host}/silo/app:v1`).tag({ repo: `${reg.host}/silo/byode`, tag: 'v3' });
  const byode = docker.getImage(`${reg.host}/silo/byode:v3`) as unknown as { push(o: object): Promise<NodeJS.ReadableStream> };
  const push = await byode.push({ tag: 'v3', authconfig: { username: USER, password: PASSWORD, serveraddress: reg.host } });
  const out: { aux?: { Digest?: string }; error?: string }[] = [];
  await new Promise<void>((res, rej) => docker.modem.followProgress(push, (e: Error | null) => (e ? rej(e) : res()), (ev: { aux?: { Digest?: string } }) => out.push(ev)));
  assert.equal(out.find((e) => e.aux)?.aux?.Digest, app.manifestDigest);
});

test('docker build --pull takes the registry\'s newer base; without it the one here is used', async () => {
  const base = `${reg.host}/silo/pullbase:1`;
  await pushImage(await client('silo/pullbase'), app, '1');
  const build = (tag: string, pull: boolean) => dk(['build', '-q', ...(pull ? ['--pull'] : []), '-t', tag, '-'], `FROM ${base}\n`);
  const cmd = async (tag: string) => (await dk(['inspect', '-f', '{{json .Config.Cmd}}', tag])).stdout.trim();
  const first = await build('pb:first', false);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(await cmd('pb:first'), '["/bin/cat","/msg"]');
  // The registry's tag moves to another image; a build without --pull keeps the base it has.
  await pushImage(await client('silo/pullbase'), image([compress(await busyboxLayer(), 'gzip', false)], { cmd: ['/bin/sh'] }), '1');
  assert.equal((await build('pb:stale', false)).code, 0);
  assert.equal(await cmd('pb:stale'), '["/bin/cat","/msg"]');
  const pulled = await build('pb:fresh', true);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(await cmd('pb:fresh'), '["/bin/sh"]');
  // Limits dockerd takes for the steps are taken; one Silo cannot honour is refused, not dropped.
  const limited = await dk(['build', '-q', '--cpu-shares', '512', '--cpu-quota', '50000', '--shm-size', '8m', '--ulimit', 'nofile=512:512', '-t', 'pb:limits', '-'], `FROM ${base}\nRUN test "$(ulimit -n)" = 512 && df -k /dev/shm | grep -q ' 8192 '\n`);
  assert.equal(limited.code, 0, limited.stderr + limited.stdout);
  for (const [flag, why] of [[['--cgroup-parent', 'x'], /--cgroup-parent is not supported/], [['--platform', 'linux/arm64'], /platform linux\/arm64 is not supported/]] as const) {
    const r = await dk(['build', '-q', ...flag, '-'], `FROM ${base}\n`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, why);
  }
  await dk(['rmi', 'pb:first', 'pb:stale', 'pb:fresh', 'pb:limits', base]);
});
