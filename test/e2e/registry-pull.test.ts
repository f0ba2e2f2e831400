// Pull, push, login and logout through the silo CLI against a real registry (docker-registry on loopback, TLS from a
// test CA, token auth from the fixture's token server; a second one with htpasswd Basic auth).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { SILO_BIN, TestDaemon } from './harness.js';
import { PASSWORD, RegistryFixture, USER } from './registry-fixture.js';
import { busyboxLayer, compress, image, layerTar, pushImage, pushIndex, type BuiltImage } from './registry-images.js';
import { Transport, RepoClient } from '../../src/storage/registry/client.js';
import { RegistryHosts } from '../../src/storage/registry/hosts.js';

const tokenReg = new RegistryFixture('token');
const basicReg = new RegistryFixture('htpasswd');
const d = new TestDaemon();
const t = new Transport({ timeoutMs: 5000, userAgent: 'silo-test' });
let app: BuiltImage;
let zst: BuiltImage;
let amd: BuiltImage;
let arm: BuiltImage;

async function client(reg: RegistryFixture, path: string): Promise<RepoClient> {
  const [ep] = await new RegistryHosts({ mirrors: {}, insecure: [], certsDir: reg.certsDir }).endpoints(reg.host);
  return new RepoClient(t, ep, path, ['pull', 'push'], { username: USER, password: PASSWORD });
}

before(async () => {
  await Promise.all([tokenReg.start(), basicReg.start()]);
  // One certs.d for both registries: the daemon trusts each test CA for its own host only.
  const { cpSync } = await import('node:fs');
  cpSync(basicReg.certsDir, tokenReg.certsDir, { recursive: true });
  await d.start({ SILO_CERTS_DIR: tokenReg.certsDir, SILO_REGISTRY_TIMEOUT: '5' });
  const bb = compress(await busyboxLayer(), 'gzip', false);
  app = image([bb, compress(await layerTar({ 'hello.txt': 'hello from the registry\n' }), 'gzip', false)], { cmd: ['/bin/cat', '/hello.txt'] });
  zst = image([compress(await busyboxLayer(), 'zstd', true), compress(await layerTar({ 'z.txt': 'zstd layer\n' }), 'none', true)], { oci: true, cmd: ['/bin/cat', '/z.txt'] });
  amd = image([bb, compress(await layerTar({ 'arch.txt': 'amd64\n' }), 'gzip', true)], { oci: true, arch: 'amd64', cmd: ['/bin/cat', '/arch.txt'] });
  arm = image([compress(await layerTar({ 'arch.txt': 'arm64\n' }), 'gzip', true)], { oci: true, arch: 'arm64' });
  const c = await client(tokenReg, 'silo/app');
  await pushImage(c, app, 'v1');
  await pushImage(await client(tokenReg, 'silo/zstd'), zst, 'latest');
  await pushIndex(await client(tokenReg, 'silo/multi'), [{ img: amd, platform: { os: 'linux', architecture: 'amd64' } }, { img: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }], 'latest');
  await pushImage(await client(basicReg, 'private/app'), app, 'v1');
});

after(async () => {
  await t.close();
  const left = await d.teardown();
  await Promise.all([tokenReg.teardown(), basicReg.teardown()]);
  assert.deepEqual(left, []);
});

const inspect = async (ref: string) => JSON.parse((await d.silo(['inspect', '--type', 'image', ref])).stdout)[0] ?? JSON.parse((await d.silo(['inspect', ref])).stdout)[0];

test('pull by tag: layers, digest line, the image id is the config digest; pulling again is up to date', async () => {
  const ref = `${tokenReg.host}/silo/app:v1`;
  const r = await d.silo(['pull', ref]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /v1: Pulling from silo\/app/);
  assert.match(r.stdout, /Pull complete/);
  assert.match(r.stdout, new RegExp(`Digest: ${app.manifestDigest}`));
  assert.match(r.stdout, /Status: Downloaded newer image for/);
  const img = (await d.silo(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout;
  assert.match(img, new RegExp(`${app.configDesc.digest.slice(7, 19)} ${tokenReg.host}/silo/app:v1`));
  const again = await d.silo(['pull', ref]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Already exists/);
  assert.match(again.stdout, /Image is up to date/);
  const run = await d.silo(['run', '--rm', ref]);
  assert.equal(run.stdout, 'hello from the registry\n', run.stderr);
});

test('pull by digest; zstd and uncompressed layers', async () => {
  const r = await d.silo(['pull', `${tokenReg.host}/silo/zstd@${zst.manifestDigest}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Digest: ${zst.manifestDigest}`));
  const run = await d.silo(['run', '--rm', zst.configDesc.digest.slice(7, 19)]);
  assert.equal(run.stdout, 'zstd layer\n', run.stderr);
});

test('run of a missing image pulls it (from an index, the host platform)', async () => {
  const r = await d.silo(['run', '--rm', `${tokenReg.host}/silo/multi`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'amd64\n');
  assert.match(r.stderr, /Unable to find image/);
});

test('--platform picks from an index; a platform that is not there is a clear error', async () => {
  const r = await d.silo(['pull', '--platform', 'linux/arm64', `${tokenReg.host}/silo/multi:latest`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await inspect(arm.configDesc.digest)).Architecture ?? (await inspect(arm.configDesc.digest)).architecture, 'arm64');
  const bad = await d.silo(['pull', '--platform', 'linux/s390x', `${tokenReg.host}/silo/multi:latest`]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /no matching manifest for linux\/s390x in the manifest list entries/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
});

test('a tag the registry does not have: one line, exit 125', async () => {
  const r = await d.silo(['pull', `${tokenReg.host}/silo/app:nope`]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /manifest for .*silo\/app:nope not found/);
});

test('push to a new repository (cross-repository mount) and pull back with identical digests', async () => {
  const src = `${tokenReg.host}/silo/app:v1`;
  const dst = `${tokenReg.host}/silo/copy:v2`;
  // Anonymous users may only pull from the token registry: log in for a push-scoped token.
  const login = await d.silo(['login', '-u', USER, '--password-stdin', tokenReg.host], { input: `${PASSWORD}\n` });
  assert.equal(login.code, 0, login.stderr);
  assert.equal((await d.silo(['tag', src, dst])).code, 0);
  const p = await d.silo(['push', dst]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /The push refers to repository/);
  // Every blob came from another repository of this registry: mounted, not uploaded.
  assert.match(p.stdout, /[0-9a-f]{12}: Mounted from silo\//);
  assert.doesNotMatch(p.stdout, /: Pushed/);
  assert.match(p.stdout, new RegExp(`v2: digest: ${app.manifestDigest} size: ${app.manifest.length}`));
  // The registry serves exactly the pulled bytes under the new name.
  const m = await (await client(tokenReg, 'silo/copy')).getManifest('v2');
  assert.equal(m.digest, app.manifestDigest);
  assert.equal((await d.silo(['rmi', dst])).code, 0);
  const back = await d.silo(['pull', dst]);
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stdout, new RegExp(`Digest: ${app.manifestDigest}`));
});

test('push of an image made locally (commit) uploads its blobs; pull back gives the same image id', async () => {
  const name = `${tokenReg.host}/silo/made:v1`;
  const c = await d.silo(['run', '--name', 'mk', `${tokenReg.host}/silo/app:v1`]);
  assert.equal(c.code, 0, c.stderr);
  const id = (await d.silo(['commit', 'mk', name])).stdout.trim();
  await d.silo(['rm', 'mk']);
  const p = await d.silo(['push', name]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /Pushed|Layer already exists|Mounted from/);
  assert.equal((await d.silo(['rmi', name])).code, 0);
  const back = await d.silo(['pull', name]);
  assert.equal(back.code, 0, back.stderr);
  const again = (await d.silo(['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout;
  assert.match(again, new RegExp(`${id} ${name}`));
});

test('push --all-tags and pull --all-tags move every tag of a repository', async () => {
  const repo = `${tokenReg.host}/silo/every`;
  for (const t of ['a', 'b']) assert.equal((await d.silo(['tag', `${tokenReg.host}/silo/app:v1`, `${repo}:${t}`])).code, 0);
  const p = await d.silo(['push', '--all-tags', repo]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /a: digest: sha256:/);
  assert.match(p.stdout, /b: digest: sha256:/);
  assert.equal((await d.silo(['rmi', `${repo}:a`, `${repo}:b`])).code, 0);
  const r = await d.silo(['pull', '--all-tags', repo]);
  assert.equal(r.code, 0, r.stderr);
  const names = (await d.silo(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter((l) => l.startsWith(repo)).sort();
  assert.deepEqual(names, [`${repo}:a`, `${repo}:b`]);
  const bad = await d.silo(['push', '--all-tags', `${repo}:a`]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /tag can't be used with --all-tags/);
});

test('login, logout, wrong credentials (Basic auth registry)', async () => {
  const ref = `${basicReg.host}/private/app:v1`;
  const denied = await d.silo(['pull', ref]);
  assert.equal(denied.code, 125);
  assert.match(denied.stderr, /access denied|authentication required|unauthorized/);
  const wrong = await d.silo(['login', '-u', USER, '--password-stdin', basicReg.host], { input: 'wrong\n' });
  assert.equal(wrong.code, 125);
  assert.match(wrong.stderr, /incorrect username or password/);
  const ok = await d.silo(['login', '-u', USER, '--password-stdin', basicReg.host], { input: `${PASSWORD}\n` });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Login Succeeded/);
  const file = join(d.stateDir, 'registry', 'auth.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.ok(!readFileSync(file, 'utf8').includes(PASSWORD)); // base64, as docker's config.json
  const r = await d.silo(['pull', ref]);
  assert.equal(r.code, 0, r.stderr);
  const out = await d.silo(['logout', basicReg.host]);
  assert.match(out.stdout, /Removing login credentials/);
  assert.equal((await d.silo(['rmi', ref])).code, 0);
  assert.equal((await d.silo(['pull', ref])).code, 125);
});

/**
 * Run the silo CLI on a pseudo-terminal (util-linux script): each answer is typed once its prompt has shown. Resolves
 * with everything the terminal showed and the CLI's exit status.
 */
function onTerminal(args: string[], answers: [prompt: string, answer: string][]): Promise<{ code: number | null; screen: string }> {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, SILO_BIN, ...args].map(q).join(' ');
  const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, SILO_HOST: `unix://${d.socket}` }, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  const left = [...answers];
  let from = 0;
  p.stdout.on('data', (b: Buffer) => {
    screen += b.toString('utf8');
    for (let at; left.length && (at = screen.indexOf(left[0][0], from)) >= 0; ) {
      from = at + left[0][0].length;
      p.stdin.write(`${left.shift()![1]}\r`);
    }
  });
  p.stderr.on('data', (b: Buffer) => (screen += b.toString('utf8')));
  const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
  return new Promise((res) => p.on('close', (code) => (clearTimeout(timer), p.stdin.end(), res({ code, screen }))));
}

test('login prompts on a terminal: the username echoed, the password not; without a terminal it refuses as docker does', async () => {
  const both = await onTerminal(['login', basicReg.host], [['Username: ', USER], ['Password: ', PASSWORD]]);
  assert.equal(both.code, 0, both.screen);
  assert.match(both.screen, /Username: /);
  assert.match(both.screen, new RegExp(`Username: ${USER}\\r?\\n`), 'the username is echoed');
  assert.match(both.screen, /Password: \r?\n/, 'the password is not');
  assert.ok(!both.screen.includes(PASSWORD), both.screen);
  assert.match(both.screen, /Login Succeeded/);
  assert.match((await d.silo(['logout', basicReg.host])).stdout, /Removing login credentials/);
  // -u given: only the password is asked for; a wrong one is refused.
  const wrong = await onTerminal(['login', '-u', USER, basicReg.host], [['Password: ', 'wrong']]);
  assert.equal(wrong.code, 125, wrong.screen);
  assert.ok(!wrong.screen.includes('Username: '), wrong.screen);
  assert.match(wrong.screen, /incorrect username or password/);
  // No terminal and nothing to read the password from: docker's one line and status.
  const none = await d.silo(['login', '-u', USER, basicReg.host], { input: '' });
  assert.equal(none.code, 1);
  assert.equal(none.stderr, 'silo: Cannot perform an interactive login from a non TTY device\n');
  const noUser = await d.silo(['login', basicReg.host], { input: '' });
  assert.equal(noUser.code, 1);
  assert.match(noUser.stderr, /^silo: Cannot perform an interactive login from a non TTY device\n$/);
  const stdinNoUser = await d.silo(['login', '--password-stdin', basicReg.host], { input: `${PASSWORD}\n` });
  assert.equal(stdinNoUser.code, 125);
  assert.equal(stdinNoUser.stderr, 'silo: Must provide --username with --password-stdin\n');
  assert.match((await d.silo(['logout', basicReg.host])).stdout, /Not logged in/);
});

test('create of a missing image pulls it; on a terminal pull draws a bar per layer, otherwise plain lines', async () => {
  // An image of its own: no other name here shares its layer, so every pull below downloads it.
  const own = image([compress(await layerTar({ 'c.txt': 'created\n'.repeat(100_000) }), 'gzip', false)], { cmd: ['/bin/cat', '/c.txt'] });
  await pushImage(await client(tokenReg, 'silo/created'), own, 'v1');
  const ref = `${tokenReg.host}/silo/created:v1`;
  const name = `${d.tag}-created`;
  const c = await d.silo(['create', '--name', name, ref]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /Unable to find image/);
  assert.match(c.stderr, /Pull complete/);
  assert.equal((await d.silo(['rm', name])).code, 0);
  assert.equal((await d.silo(['rmi', ref])).code, 0);
  const tty = await onTerminal(['pull', ref], []);
  assert.equal(tty.code, 0, tty.screen);
  // cli-progress redraws bars in place (cursor movement) with its shades preset; a pipe gets none of that.
  assert.match(tty.screen, /\x1b\[/);
  assert.match(tty.screen, /[█░]{10,}/);
  assert.match(tty.screen, /Status: Downloaded newer image for/);
  assert.equal((await d.silo(['rmi', ref])).code, 0);
  const plain = await d.silo(['pull', ref]);
  assert.doesNotMatch(plain.stdout, /\x1b\[|█/);
  assert.match(plain.stdout, /^[0-9a-f]{12}: Pull complete$/m);
  assert.equal((await d.silo(['rmi', ref])).code, 0);
});

test('save and load (docker-archive and --format oci) keep the image id and the manifest digest', async () => {
  const ref = `${tokenReg.host}/silo/app:v1`;
  assert.equal((await d.silo(['pull', ref])).code, 0);
  for (const format of ['docker', 'oci']) {
    const file = join(d.stateDir, `save-${format}.tar`);
    const s = await d.silo(['save', '-o', file, '--format', format, ref]);
    assert.equal(s.code, 0, s.stderr);
    const { execFileSync } = await import('node:child_process');
    const entries = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n');
    assert.ok(entries.includes('index.json') && entries.includes('oci-layout'));
    assert.equal(entries.includes('manifest.json'), format === 'docker');
    assert.ok(entries.includes(`blobs/sha256/${app.manifestDigest.slice(7)}`), 'the pulled manifest blob as it came');
    assert.equal((await d.silo(['rmi', ref])).code, 0);
    const l = await d.silo(['load', '-i', file]);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, new RegExp(`Loaded image: ${tokenReg.host}/silo/app:v1`));
    const id = (await d.silo(['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout;
    assert.match(id, new RegExp(`${app.configDesc.digest} ${ref}`));
  }
  const bad = await d.silo(['save', '--format', 'zip', '-o', join(d.stateDir, 'x.tar'), ref]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /unknown archive format "zip"/);
});
