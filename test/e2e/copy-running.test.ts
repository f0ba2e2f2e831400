// docker cp into and out of a running container never freezes it: a client that stalls an upload freezes nothing
// and its copy is given up after the copy timeout; a daemon killed during a copy leaves the container running, not
// paused; and a process inside that swaps a path component for a symlink to / cannot lead the copy onto the host
// (CVE-2018-15664), with the container running all along.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerFixture } from './docker-fixture.js';
import { sleep } from './harness.js';

const fx = new DockerFixture();
const docker = (args: string[], o?: Parameters<DockerFixture['run']>[1]) => fx.run(args, o);
// A copy with no data moving for 3 s is given up (the default is 2 minutes).
const ENV = { SILO_COPY_IDLE_SECONDS: '3' };
let dir: string;

before(async () => {
  await fx.start(ENV);
  dir = await mkdtemp(join(tmpdir(), 'silo-cp-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(await fx.teardown(), []);
});

const status = async (name: string) => (await docker(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', name])).stdout.trim();
const tick = async (name: string) => Number((await docker(['exec', name, 'cat', '/tmp/tick'])).stdout.trim());

/** The container's counter moves on: its processes are not frozen. */
async function assertTicking(name: string): Promise<void> {
  const a = await tick(name);
  await sleep(600);
  const b = await tick(name);
  assert.ok(b > a, `the container's counter did not move (${a} then ${b})`);
}

test('a stalled upload freezes nothing and is given up; a daemon killed during a copy leaves the container running', async () => {
  const r = await docker(['run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.1; done']);
  assert.equal(r.code, 0, r.stderr);

  // The client opens the upload and then sends nothing (`sleep | docker cp - ctr:/tmp`).
  const stalled = docker(['sleep 8 | docker cp - ticker:/tmp'], { shell: true, timeoutMs: 60_000 });
  await sleep(1500);
  assert.equal(await status('ticker'), 'running false');
  await assertTicking('ticker');
  const s = await stalled;
  assert.notEqual(s.code, 0);
  assert.match(s.stderr, /no data moved/);
  assert.equal(await status('ticker'), 'running false');

  // Copies still work both ways while it runs.
  await writeFile(join(dir, 'f.txt'), 'in\n');
  assert.equal((await docker(['cp', join(dir, 'f.txt'), 'ticker:/tmp/'])).code, 0);
  assert.equal((await docker(['cp', 'ticker:/tmp/f.txt', join(dir, 'back.txt')])).code, 0);
  assert.equal(await readFile(join(dir, 'back.txt'), 'utf8'), 'in\n');

  // The daemon dies in the middle of a copy: the next one finds the container running, not paused.
  const cut = docker(['sleep 5 | docker cp - ticker:/tmp'], { shell: true, timeoutMs: 60_000 });
  await sleep(1500);
  await fx.d.kill();
  await cut;
  await fx.start(ENV);
  assert.equal(await status('ticker'), 'running false');
  await assertTicking('ticker');
  assert.equal((await docker(['rm', '-f', 'ticker'])).code, 0);
});

test('copies into a running container reach its volumes as it sees them; a read-only one refuses with a clear error', async () => {
  const r = await docker(['run', '-d', '--name', 'vols', '-v', 'silo-cp-rw:/data', '-v', 'silo-cp-ro:/ro:ro', 'busybox', 'sleep', '300']);
  assert.equal(r.code, 0, r.stderr);
  try {
    await writeFile(join(dir, 'v.txt'), 'volume\n');
    assert.equal((await docker(['cp', join(dir, 'v.txt'), 'vols:/data/'])).code, 0);
    const other = await docker(['run', '--rm', '-v', 'silo-cp-rw:/x', 'busybox', 'cat', '/x/v.txt']);
    assert.deepEqual([other.code, other.stdout], [0, 'volume\n']);
    const ro = await docker(['cp', join(dir, 'v.txt'), 'vols:/ro/']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /read-only/);
    assert.equal((await docker(['exec', 'vols', 'ls', '/ro'])).stdout, '');
  } finally {
    await docker(['rm', '-f', 'vols']);
    await docker(['volume', 'rm', 'silo-cp-rw', 'silo-cp-ro']);
  }
});

test('a symlink swapped in while copies run cannot lead them out of the running container', async () => {
  const r = await docker(['run', '-d', '--name', 'swapper', 'busybox', 'sh', '-c', 'while true; do rm -rf /tmp/x; mkdir /tmp/x; rm -rf /tmp/x; ln -s / /tmp/x; done']);
  assert.equal(r.code, 0, r.stderr);
  const name = `silo-cve-${randomBytes(6).toString('hex')}`;
  await writeFile(join(dir, name), 'escaped?\n');
  try {
    for (let i = 0; i < 20; i++) await docker(['cp', join(dir, name), 'swapper:/tmp/x/']);
    assert.equal(existsSync(`/${name}`), false, 'a copy landed on the host');
    assert.equal(await status('swapper'), 'running false');
  } finally {
    await rm(`/${name}`, { force: true });
    await docker(['rm', '-f', 'swapper']);
  }
});
