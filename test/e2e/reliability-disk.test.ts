// Full disk: the daemon's state dir on a small loop-mounted ext4 that the test fills. Creating a container,
// importing, pulling (from a loopback registry) or building an image then fails with a clear one-line "no space" error (500 with code SILO_DISK_FULL
// on the API, as dockerd answers it; exit 125 on the CLI), leaves nothing half-made, the daemon still answers and
// restarts; a container whose log cannot be written (and rotates meanwhile) keeps running and its log is readable;
// once space is freed, Silo carries on and the log is written again.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { pack } from 'tar-stream';
import { TestDaemon, leaks, sleep } from './harness.js';
import { request } from './native-client.js';
import { readdirSync } from 'node:fs';
import { RegistryFixture } from './registry-fixture.js';
import { busyboxLayer, compress, image, layerTar, pushImage } from './registry-images.js';
import { Transport, RepoClient } from '../../src/storage/registry/client.js';
import { RegistryHosts } from '../../src/storage/registry/hosts.js';

const d = new TestDaemon({ stateDir: (tag) => `/var/lib/${tag}-disk/state` });
const mnt = `/var/lib/${d.tag}-disk`;
const img = `/var/lib/${d.tag}-disk.img`;
const filler = `${mnt}/filler`;
let dev = '';
const registry = new RegistryFixture('none', false);
const transport = new Transport({ timeoutMs: 5000, userAgent: 'silo-test' });
const blobFiles = () => readdirSync(`${d.stateDir}/storage/blobs/sha256`).sort();

/** A one-file rootfs tar, in memory. */
async function smallTar(): Promise<Buffer> {
  const p = pack();
  p.entry({ name: 'hello.txt' }, 'hello\n');
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A build context: a Dockerfile whose step writes a file. */
async function buildContext(): Promise<Buffer> {
  const p = pack();
  p.entry({ name: 'Dockerfile' }, 'FROM busybox\nRUN echo built > /built.txt\n');
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Docker's build through the Docker API: its JSON lines' errors, or none. */
async function build(tag: string): Promise<string[]> {
  const r = await request(`${d.runDir}/docker.sock`, 'POST', `/build?t=${tag}&rm=1`, { body: await buildContext(), headers: { 'Content-Type': 'application/x-tar' }, timeoutMs: 120_000 });
  if (r.status !== 200) return [`${r.status} ${r.body.toString().trim()}`];
  return r.body.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((m) => m.error || m.errorDetail).map((m) => String(m.error ?? m.errorDetail.message));
}

const CHATTY = 'i=0; while true; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); sleep 0.05; done';
/** The numbers of the lines of chatty's log that can be read (its last 20). */
async function chattyLines(): Promise<number[]> {
  const r = await d.silo(['logs', '--tail', '20', 'chatty']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => Number(/^line-(\d+)-/.exec(l)?.[1] ?? NaN));
}

/** Write until the filesystem refuses: big chunks, then small ones, so not a block is left. */
function fill(): void {
  const fd = openSync(filler, 'a');
  try {
    for (const size of [1 << 20, 1 << 12, 1 << 9]) {
      const b = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, b);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

before(async () => {
  execFileSync('truncate', ['-s', '48M', img]);
  dev = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
  execFileSync('mkfs.ext4', ['-q', '-F', dev]);
  mkdirSync(mnt, { recursive: true });
  execFileSync('mount', [dev, mnt]);
  await Promise.all([d.start(), registry.start()]);
  // An image to pull: busybox and a 600 KB layer, in a plain-HTTP registry on loopback.
  const [ep] = await new RegistryHosts({ mirrors: {}, insecure: [], certsDir: '/nonexistent' }).endpoints(registry.host);
  const c = new RepoClient(transport, { ...ep, base: `http://${registry.host}` }, 'silo/disk', ['pull', 'push']);
  const pulled = image([compress(await busyboxLayer(), 'gzip', false), compress(await layerTar({ 'big.txt': 'pull on a full disk\n'.repeat(30_000) }), 'gzip', false)], { cmd: ['/bin/cat', '/big.txt'] });
  await pushImage(c, pulled, 'v1');
});

after(async () => {
  await transport.close();
  await registry.teardown();
  rmSync(filler, { force: true });
  // The test's own mount and loop device carry the tag too; they go once the daemon's teardown is done.
  const left = (await d.teardown()).filter((l) => !l.startsWith(`mount: ${mnt}`) && !(l.startsWith('loop:') && l.includes(img)));
  execFileSync('umount', [mnt]);
  execFileSync('losetup', ['-d', dev]);
  rmSync(img, { force: true });
  rmdirSync(mnt);
  assert.deepEqual(left, []);
  assert.deepEqual(leaks(d.tag), []);
});

test('a full state filesystem: clear errors, no corrupt state, and Silo carries on once space is freed', async () => {
  const keep = await d.silo(['run', '-d', '--name', 'keep', 'busybox', 'sh', '-c', 'trap "exit 0" TERM; sleep 600 & wait']);
  assert.equal(keep.code, 0, keep.stderr);
  // A container printing 20 lines a second into a log that rotates every few kilobytes.
  const chatty = await d.silo(['run', '-d', '--name', 'chatty', '--log-opt', 'max-size=8k', '--log-opt', 'max-file=2', 'busybox', 'sh', '-c', CHATTY]);
  assert.equal(chatty.code, 0, chatty.stderr);
  const tar = await smallTar();
  fill();

  // The API: 500 (dockerd's status for it) with the code SILO_DISK_FULL and a one-line message that says so, naming no
  // host path.
  const api = await request(d.socket, 'POST', '/v1/systems', { json: { Name: 'full', Image: 'busybox', Document: { Process: { CommandArgs: ['true'] } } } });
  assert.equal(api.status, 500, api.body.toString());
  assert.equal(api.json.code, 'SILO_DISK_FULL', api.body.toString());
  assert.match(api.json.message, /no space/i);
  assert.doesNotMatch(api.json.message, /\/(var|run|tmp)\//, api.body.toString());
  assert.doesNotMatch(api.json.message, /\n/);
  console.log(`full disk, create: ${api.status} ${api.json.message}`);

  // The CLI: exit 125 and one line on stderr, for a container and for an image.
  for (const args of [['create', '--name', 'full2', 'busybox', 'true'], ['run', '--rm', 'busybox', 'true'], ['import', '-', 'full:v1']]) {
    const r = await d.silo(args, { input: args[0] === 'import' ? tar.toString('latin1') : undefined });
    // The tar is ASCII (headers and one text file), so it survives the harness' string input.
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /no space/i, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const imported = await request(d.socket, 'POST', '/v1/images/import?name=full:v2', { body: tar, headers: { 'Content-Type': 'application/x-tar' } });
  assert.equal(imported.status, 500, imported.body.toString());
  assert.equal(imported.json.code, 'SILO_DISK_FULL', imported.body.toString());
  // A pull: one line, no image, no blob and nothing half-written kept.
  const blobsBefore = blobFiles();
  const pull = await d.silo(['pull', `${registry.host}/silo/disk:v1`]);
  assert.equal(pull.code, 125, pull.stdout);
  assert.match(pull.stderr, /no space/i);
  assert.equal(pull.stderr.trim().split('\n').length, 1, pull.stderr);
  assert.deepEqual(blobFiles(), blobsBefore, 'a blob was kept');
  assert.deepEqual(readdirSync(`${d.stateDir}/storage/blobs/ingest`), [], 'a half-written blob was left');
  // A build: its error says so, in one line; no step container and no image is left (checked below).
  const built = await build('full-build');
  assert.equal(built.length, 1, built.join(' | '));
  assert.match(built[0], /no space/i);
  assert.doesNotMatch(built[0], /\n|\/(var|run|tmp)\//);

  // The log cannot be written: the container keeps running through its rotations, and its log is read as it is.
  await sleep(1500);
  const stuck = await chattyLines();
  assert.ok(stuck.length > 0);
  assert.equal(JSON.parse((await d.silo(['inspect', 'chatty'])).stdout)[0].State, 'Running');

  // Nothing half-made: only `keep` is listed, no image was added, the daemon finds no orphans.
  const names = async () => (await d.silo(['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean);
  assert.deepEqual(await names(), ['chatty', 'keep']);
  assert.doesNotMatch((await d.silo(['images'])).stdout, /full/);
  assert.equal((await d.silo(['doctor'])).code, 0);

  // The daemon restarts on a full disk and still knows its container, which kept running.
  await d.stop();
  await d.start();
  assert.deepEqual(await names(), ['chatty', 'keep']);
  assert.equal((await d.silo(['exec', 'keep', 'echo', 'alive'])).stdout, 'alive\n');

  // Space back: everything works again.
  rmSync(filler);
  const run = await d.silo(['run', '--rm', 'busybox', 'echo', 'ok']);
  assert.equal(run.stdout, 'ok\n', run.stderr);
  const imp = await d.silo(['import', '-', 'full:v1'], { input: tar.toString('latin1') });
  assert.equal(imp.code, 0, imp.stderr);
  assert.match((await d.silo(['images'])).stdout, /full/);
  assert.equal((await d.silo(['rmi', 'full:v1'])).code, 0);
  const pulledAgain = await d.silo(['run', '--rm', `${registry.host}/silo/disk:v1`]);
  assert.equal(pulledAgain.code, 0, pulledAgain.stderr);
  assert.match(pulledAgain.stdout, /^pull on a full disk\n/);
  assert.equal((await d.silo(['rmi', `${registry.host}/silo/disk:v1`])).code, 0);
  assert.deepEqual(await build('full-build'), []);
  assert.equal((await d.silo(['run', '--rm', 'full-build', 'cat', '/built.txt'])).stdout, 'built\n');
  assert.equal((await d.silo(['rmi', 'full-build'])).code, 0);
  // The log is written again (and still rotates): lines newer than any kept while the disk was full.
  const newest = Math.max(...stuck);
  let lines = await chattyLines();
  for (let i = 0; i < 50 && !(Math.max(...lines) > newest + 20); i++) {
    await sleep(200);
    lines = await chattyLines();
  }
  assert.ok(Math.max(...lines) > newest + 20, `the log stopped at line ${Math.max(...lines)} (${newest} while full)`);
  assert.equal(JSON.parse((await d.silo(['inspect', 'chatty'])).stdout)[0].State, 'Running');
  assert.equal((await d.silo(['rm', '-f', 'chatty'])).code, 0);
  assert.equal((await d.silo(['stop', 'keep'])).code, 0);
  assert.equal((await d.silo(['doctor'])).code, 0);
});
