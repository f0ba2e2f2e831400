// Docker routes a standalone dockerd has and clients call (issue 15 item 10): export, diff, the attach event, the
// swarm probes; and docker build options. Driven through the real docker CLI.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerFixture } from './docker-fixture.js';

const fx = new DockerFixture();
const docker = (args: string[], o?: Parameters<DockerFixture['run']>[1]) => fx.run(args, o);
let tmp = '';
const tarOut = async (args: string[]) => (await promisify(execFile)('tar', args, { maxBuffer: 64 << 20 })).stdout;

before(async () => {
  await fx.start();
  tmp = await mkdtemp(join(tmpdir(), 'silo-test-routes-'));
});

after(async () => {
  await docker(['rm', '-f', 'ex1', 'df1', 'at1']);
  await rm(tmp, { recursive: true, force: true });
  const left = await fx.teardown();
  assert.deepEqual(left, []);
});

/** A raw request on the Docker socket: status and body. */
function api(method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: `${fx.d.runDir}/docker.sock`, method, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('docker export writes the container\'s whole filesystem, without its volumes, running or stopped', async () => {
  const vol = join(tmp, 'vol');
  await mkdir(vol);
  await writeFile(join(vol, 'from-bind'), '');
  const r = await docker(['run', '-d', '--name', 'ex1', '-v', `${vol}:/data`, 'busybox', 'sh', '-c', 'echo made > /made.txt; sleep 300']);
  assert.equal(r.code, 0, r.stderr);
  for (const phase of ['running', 'stopped']) {
    const out = join(tmp, `ex-${phase}.tar`);
    const e = await docker(['export', '-o', out, 'ex1']);
    assert.equal(e.code, 0, e.stderr);
    const list = (await tarOut(['-tf', out])).split('\n').map((l) => l.replace(/^\.\//, ''));
    assert.ok(list.includes('bin/busybox'), `${phase}: the image's files`);
    assert.ok(list.includes('made.txt'), `${phase}: the container's own file`);
    assert.ok(!list.some((l) => l.startsWith('data/from-bind')), `${phase}: a bind is not the container's`);
    assert.ok(!list.some((l) => l.startsWith('proc/') && l !== 'proc/'), `${phase}: nothing the kernel mounts`);
    assert.equal(await tarOut(['-xOf', out, './made.txt']), 'made\n');
    if (phase === 'running') assert.equal((await docker(['stop', '-t', '0', 'ex1'])).code, 0);
  }
  assert.match((await docker(['export', '-o', join(tmp, 'x.tar'), 'nosuch'])).stderr, /No such container/);
  await docker(['rm', '-f', 'ex1']);
});

test('docker diff lists what the container added, changed and deleted', async () => {
  const r = await docker(['run', '--name', 'df1', 'busybox', 'sh', '-c', 'mkdir /newdir && echo x > /newdir/f && echo y >> /etc/passwd && rm /etc/group']);
  assert.equal(r.code, 0, r.stderr);
  const d = await docker(['diff', 'df1']);
  assert.equal(d.code, 0, d.stderr);
  assert.deepEqual(d.stdout.trim().split('\n'), ['C /etc', 'D /etc/group', 'C /etc/passwd', 'A /newdir', 'A /newdir/f']);
  const raw = await api('GET', '/containers/df1/changes');
  assert.equal(raw.status, 200);
  assert.deepEqual(JSON.parse(raw.body)[1], { Path: '/etc/group', Kind: 2 });
  await docker(['rm', '-f', 'df1']);
});

test('attaching emits an attach event', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const r = await docker(['run', '--name', 'at1', 'busybox', 'true']);
  assert.equal(r.code, 0, r.stderr);
  const ev = await docker(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=at1', '--format', '{{.Action}}']);
  assert.deepEqual(ev.stdout.trim().split('\n').filter((a) => ['create', 'attach', 'start', 'die'].includes(a)), ['create', 'attach', 'start', 'die']);
  await docker(['rm', '-f', 'at1']);
});

test('swarm routes answer as a standalone dockerd: 503 not a swarm manager', async () => {
  for (const p of ['/swarm', '/nodes', '/services', '/tasks', '/secrets', '/configs', '/v1.41/services/x']) {
    const r = await api('GET', p);
    assert.equal(r.status, 503, p);
    assert.match(JSON.parse(r.body).message, /^This node is not a swarm manager/, p);
  }
  const ls = await docker(['service', 'ls']);
  assert.notEqual(ls.code, 0);
  assert.match(ls.stderr, /This node is not a swarm manager/);
  const init = await docker(['swarm', 'init']);
  assert.notEqual(init.code, 0);
  assert.match(init.stderr, /swarm mode is not supported/);
});
