// docker cp into and out of a running vm-isolated container, through the guest agent (agent/fs.c): every path is
// resolved inside the container's root in the guest, so a symlink of the container (even one swapped in meanwhile)
// cannot lead a copy onto the guest's own files (its initramfs, whose /init is the agent); the container keeps
// running; docker's stat header describes the path; a commit of the running VM is refused with one line; a stopped
// one's files are copied with its root mounted on the host for the copy alone.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chown, lstat, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { DockerFixture } from './docker-fixture.js';

const fx = new DockerFixture();
// Under TCG on a loaded machine a VM run can take minutes; each docker call is given that long.
const docker = (args: string[], o: Parameters<DockerFixture['run']>[1] = {}) => fx.run(args, { timeoutMs: 300_000, ...o });
let dir: string;

before(async () => {
  await fx.start();
  dir = await mkdtemp(join(tmpdir(), 'silo-vmcp-'));
  const r = await docker(['run', '-d', '--isolation', 'hyperv', '--name', 'vcp', 'busybox', 'sleep', '3600']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await docker(['rm', '-f', 'vcp']);
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(await fx.teardown(), []);
});

const status = async (name: string) => (await docker(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', name])).stdout.trim();

/** docker's stat of a container path, from the header of HEAD /containers/{id}/archive. */
function statHeader(name: string, path: string): Promise<{ status: number; stat?: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: `${fx.d.runDir}/docker.sock`, method: 'HEAD', path: `/containers/${name}/archive?path=${encodeURIComponent(path)}` }, (res) => {
      res.resume();
      const h = res.headers['x-docker-container-path-stat'];
      resolve({ status: res.statusCode ?? 0, ...(typeof h === 'string' ? { stat: JSON.parse(Buffer.from(h, 'base64').toString('utf8')) } : {}) });
    });
    req.on('error', reject);
    req.end();
  });
}

test('a file copied into the running guest is read by exec; a directory comes out whole; the stat header is docker\'s', async () => {
  await writeFile(join(dir, 'f.txt'), 'into the vm\n');
  const i = await docker(['cp', join(dir, 'f.txt'), 'vcp:/tmp/']);
  assert.equal(i.code, 0, i.stderr);
  assert.equal((await docker(['exec', 'vcp', 'cat', '/tmp/f.txt'])).stdout, 'into the vm\n');

  // A file larger than one request (the agent's frames are at most 1 MiB), byte for byte.
  const big = randomBytes(3 * 1024 * 1024 + 123);
  await writeFile(join(dir, 'big.bin'), big);
  assert.equal((await docker(['cp', join(dir, 'big.bin'), 'vcp:/big.bin'])).code, 0);
  const sum = await docker(['exec', 'vcp', 'md5sum', '/big.bin']);
  assert.equal(sum.stdout.split(' ')[0], createHash('md5').update(big).digest('hex'));

  const mk = await docker(['exec', 'vcp', 'sh', '-c', 'mkdir -p /d/sub && echo a > /d/a && echo b > /d/sub/b && ln -s a /d/l && chmod 640 /d/a']);
  assert.equal(mk.code, 0, mk.stderr);
  const o = await docker(['cp', 'vcp:/d', join(dir, 'out')]);
  assert.equal(o.code, 0, o.stderr);
  assert.equal(await readFile(join(dir, 'out/a'), 'utf8'), 'a\n');
  assert.equal(await readFile(join(dir, 'out/sub/b'), 'utf8'), 'b\n');
  assert.equal(await readlink(join(dir, 'out/l')), 'a');
  assert.equal((await lstat(join(dir, 'out/a'))).mode & 0o777, 0o640);
  const back = await docker(['cp', 'vcp:/big.bin', join(dir, 'big.out')]);
  assert.equal(back.code, 0, back.stderr);
  assert.ok((await readFile(join(dir, 'big.out'))).equals(big), 'the large file came back byte for byte');

  // A directory copied in keeps its owners (-a) and lands under an existing directory.
  await chown(join(dir, 'out/sub/b'), 7, 8);
  const a = await docker(['cp', '-a', join(dir, 'out'), 'vcp:/tmp/']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal((await docker(['exec', 'vcp', 'stat', '-c', '%u:%g %a', '/tmp/out/sub/b', '/tmp/out/a'])).stdout, '7:8 644\n0:0 640\n');

  const l = await statHeader('vcp', '/d/l');
  assert.equal(l.status, 200);
  assert.equal(l.stat?.name, 'l');
  assert.equal(l.stat?.linkTarget, '/d/a');
  assert.ok(((l.stat?.mode as number) & 2 ** 27) !== 0, 'a symlink by its Go mode bits');
  const dstat = await statHeader('vcp', '/d');
  assert.ok(((dstat.stat?.mode as number) & 2 ** 31) !== 0, 'a directory');
  assert.equal((await statHeader('vcp', '/no/such')).status, 404);
  const missing = await docker(['cp', 'vcp:/no/such', join(dir, 'x')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /Could not find the file \/no\/such/);
  assert.equal(await status('vcp'), 'running false');
});

test('a symlink of the container that points outside its root leads a copy nowhere but inside it', async () => {
  // The guest's own root (the initramfs) has /init, the agent; the container's busybox root has none.
  const mk = await docker(['exec', 'vcp', 'sh', '-c', 'ln -s / /tmp/abs && ln -s ../../../../../.. /tmp/up && test ! -e /init']);
  assert.equal(mk.code, 0, mk.stderr);
  for (const p of ['/tmp/abs/init', '/tmp/up/init', '/tmp/up/../../init']) {
    const r = await docker(['cp', `vcp:${p}`, join(dir, 'escaped')]);
    assert.notEqual(r.code, 0, `${p} was read: a copy left the container's root`);
    assert.match(r.stderr, /Could not find the file/);
  }
  // Into a link that leads "above" the root: the file lands at the container's own root.
  await writeFile(join(dir, 'up.txt'), 'stayed inside\n');
  const i = await docker(['cp', join(dir, 'up.txt'), 'vcp:/tmp/up/']);
  assert.equal(i.code, 0, i.stderr);
  assert.equal((await docker(['exec', 'vcp', 'cat', '/up.txt'])).stdout, 'stayed inside\n');

  // A process inside swaps a directory for a link to / while copies run: each copy stays inside the container.
  const sw = await docker(['exec', '-d', 'vcp', 'sh', '-c', 'touch /tmp/race; while [ -e /tmp/race ]; do rm -rf /tmp/x; mkdir /tmp/x; rm -rf /tmp/x; ln -s ../../../.. /tmp/x; done']);
  assert.equal(sw.code, 0, sw.stderr);
  for (let n = 0; n < 6; n++) {
    const r = await docker(['cp', 'vcp:/tmp/x/init', join(dir, `race${n}`)]);
    assert.notEqual(r.code, 0, 'the guest\'s /init was read through a swapped link');
    await docker(['cp', join(dir, 'up.txt'), 'vcp:/tmp/x/']);
  }
  await docker(['exec', 'vcp', 'rm', '-f', '/tmp/race']);
  assert.equal(await status('vcp'), 'running false');
});

test('docker export of the running guest holds its own files only; a commit of it is refused with one line; copies of it stopped', async () => {
  const e = await docker(['docker export vcp | tar -t'], { shell: true });
  assert.equal(e.code, 0, e.stderr);
  const names = e.stdout.split('\n').map((l) => l.replace(/^\.\//, ''));
  assert.ok(names.includes('tmp/f.txt'), 'the copied file is in the export');
  assert.ok(!names.some((n) => n.startsWith('proc/') && n !== 'proc/'), 'no /proc of the running guest in the export');
  const c = await docker(['commit', 'vcp', 'silo-vmcp-img']);
  assert.notEqual(c.code, 0);
  assert.match(c.stderr, /stop it before a commit/);
  assert.equal(c.stderr.trim().split('\n').length, 1);
  // Stopped, its VM gone: the root is mounted on the host for each copy alone; the next start sees what came in.
  assert.equal((await docker(['stop', '-t', '1', 'vcp'])).code, 0);
  const s = await docker(['cp', 'vcp:/tmp/f.txt', join(dir, 'stopped.txt')]);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(await readFile(join(dir, 'stopped.txt'), 'utf8'), 'into the vm\n');
  await writeFile(join(dir, 'later.txt'), 'while stopped\n');
  assert.equal((await docker(['cp', join(dir, 'later.txt'), 'vcp:/tmp/'])).code, 0);
  assert.equal((await docker(['start', 'vcp'])).code, 0);
  assert.equal((await docker(['exec', 'vcp', 'cat', '/tmp/later.txt'])).stdout, 'while stopped\n');
  assert.deepEqual(readdirSync(`${fx.d.runDir}/vm/copies/rootfs`), [], 'no copy mount is left');
});

test('copies into a running VM reach its bind mounts as the guest sees them; a read-only one refuses with one line', async () => {
  const host = await mkdtemp(join(tmpdir(), 'silo-vmcp-bind-'));
  try {
    const r = await docker(['run', '-d', '--isolation', 'hyperv', '--name', 'vbind', '-v', `${host}:/data`, '-v', `${dir}:/ro:ro`, 'busybox', 'sleep', '3600']);
    assert.equal(r.code, 0, r.stderr);
    await writeFile(join(dir, 'b.txt'), 'through virtiofs\n');
    const i = await docker(['cp', join(dir, 'b.txt'), 'vbind:/data/']);
    assert.equal(i.code, 0, i.stderr);
    assert.equal(await readFile(join(host, 'b.txt'), 'utf8'), 'through virtiofs\n');
    const ro = await docker(['cp', join(dir, 'b.txt'), 'vbind:/ro/again.txt']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /read-only/);
  } finally {
    await docker(['rm', '-f', 'vbind']);
    await rm(host, { recursive: true, force: true });
  }
});
