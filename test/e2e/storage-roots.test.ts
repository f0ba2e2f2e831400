// End to end with real kernel objects: storage describes a root (layers + a sparse ext4 scratch, its size the cap),
// the process backend's mounter puts the scratch on a loop device under an overlay. Size cap, idempotent
// describe/mount/unmount/remove, rollback of failed mounts, and commit round trips.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { openStorage, type StorageOptions } from '../../src/storage/index.js';
import { RootMounts } from '../../src/compute/rootfs-mount.js';
import { readMounts } from '../../src/common/mountinfo.js';
import type { StorageService } from '../../src/storage/types.js';

const MiB = 1024 * 1024;

interface Env {
  s: StorageService;
  opts: StorageOptions;
  runBase: string;
  roots: RootMounts;
  rootsDir: string;
  /** Describe and mount, as the compute service and the process backend do. */
  mountRoot(id: string, image: string, o: { scratchBytes: number }): Promise<{ rootfs: string; scratchBytes: number }>;
}

async function fresh(t: TestContext): Promise<Env> {
  const r = randomBytes(4).toString('hex');
  const base = `/var/lib/silo-test-${r}`;
  const runBase = `/run/silo-test-${r}`;
  const opts = { root: `${base}/storage`, runDir: `${runBase}/storage` };
  const s = await openStorage(opts);
  const rootsDir = `${runBase}/runtime`;
  const roots = new RootMounts(rootsDir);
  await roots.init();
  const mountRoot = async (id: string, image: string, o: { scratchBytes: number }) => {
    const d = await s.describeRoot(id, image, o);
    return { rootfs: await roots.mount(id, d), scratchBytes: d.scratch.sizeBytes };
  };
  t.after(async () => {
    for (const id of await roots.ids()) await roots.unmount(id).catch(() => {});
    for (const id of await s.listRoots()) await s.removeRoot(id).catch(() => {});
    await s.close(); // the scratch pool fills in the background
    // Never rm -rf through a mount: if anything of ours is still mounted, leave it for inspection.
    if (!(await readMounts()).some((m) => m.mountPoint.startsWith(runBase))) await rm(runBase, { recursive: true, force: true });
    await rm(base, { recursive: true, force: true });
  });
  return { s, opts, runBase, roots, rootsDir, mountRoot };
}

const scratchFile = (o: StorageOptions, id: string) => join(o.root, 'scratch', `${id}.img`);

async function assertGone({ opts: o, rootsDir }: Env, id: string, keepFile: boolean): Promise<void> {
  const mounts = await readMounts();
  const ours = [join(rootsDir, 'rootfs', id), join(rootsDir, 'scratch', id)];
  assert.ok(!mounts.some((m) => ours.includes(m.mountPoint) || m.mountPoint.startsWith(join(o.runDir, 'scratch', `commit-${id}-`))), 'no mounts left');
  if (existsSync(scratchFile(o, id))) {
    const j = await run('losetup', ['-j', scratchFile(o, id)]);
    assert.equal(j.stdout.trim(), '', 'no loop device left');
  }
  assert.equal(existsSync(scratchFile(o, id)), keepFile);
  assert.ok(!existsSync(join(rootsDir, 'rootfs', id)));
  assert.ok(!existsSync(join(rootsDir, 'scratch', id)));
}

test('describeRoot + mount: capped scratch gives ENOSPC; idempotent; unmount + removeRoot leave nothing', async (t) => {
  const env = await fresh(t);
  const { s, opts, roots, mountRoot } = env;
  const img = await s.ensureBaseImage();
  const d = await s.describeRoot('c1', 'busybox', { scratchBytes: 64 * MiB });
  assert.equal(d.scratch.sizeBytes, 64 * MiB);
  assert.equal(d.scratch.path, scratchFile(opts, 'c1'));
  assert.equal(d.layers.length, 1);
  assert.deepEqual(await s.describeRoot('c1', img.id, { scratchBytes: 64 * MiB }), d, 'describing again changes nothing');
  assert.equal((await readMounts()).filter((x) => x.mountPoint.startsWith(env.runBase)).length, 0, 'describing mounts nothing');
  const m = await mountRoot('c1', 'busybox', { scratchBytes: 64 * MiB });
  assert.equal(m.scratchBytes, 64 * MiB);
  assert.deepEqual(await mountRoot('c1', img.id, { scratchBytes: 64 * MiB }), m);
  assert.equal((await readMounts()).filter((x) => x.mountPoint === m.rootfs).length, 1);
  assert.ok(existsSync(join(m.rootfs, 'bin/sh')));
  const dd = await run('dd', ['if=/dev/zero', `of=${m.rootfs}/big`, 'bs=1M', 'count=100'], { allowFail: true });
  assert.notEqual(dd.code, 0);
  assert.match(dd.stderr, /No space left on device/);
  const st = await stat(scratchFile(opts, 'c1'));
  assert.equal(st.size, 64 * MiB);
  assert.ok(st.blocks * 512 <= 64 * MiB, 'the host file never grows past the cap');
  assert.deepEqual(await s.listRoots(), ['c1']);
  await roots.unmount('c1');
  await s.removeRoot('c1');
  await assertGone(env, 'c1', false);
  await roots.unmount('c1');
  await s.removeRoot('c1');
  assert.deepEqual(await s.listRoots(), []);
});

test('unmount keeps changes; a new instance finds existing mounts; partial state is tolerated', async (t) => {
  const env = await fresh(t);
  const { s, opts, roots, mountRoot } = env;
  await s.ensureBaseImage();
  const m = await mountRoot('c2', 'busybox', { scratchBytes: 32 * MiB });
  await writeFile(join(m.rootfs, 'kept'), 'yes');
  await roots.unmount('c2');
  await assertGone(env, 'c2', true);
  await roots.unmount('c2');
  const again = await mountRoot('c2', 'busybox', { scratchBytes: 32 * MiB });
  assert.equal(await readFile(join(again.rootfs, 'kept'), 'utf8'), 'yes');
  // "Daemon restart": second instances see the mount instead of stacking a new one.
  const s2 = await openStorage(opts);
  const roots2 = new RootMounts(env.rootsDir);
  assert.equal(await roots2.mount('c2', await s2.describeRoot('c2', 'busybox', { scratchBytes: 32 * MiB })), again.rootfs);
  assert.equal((await readMounts()).filter((x) => x.mountPoint === again.rootfs).length, 1);
  // Someone took the overlay down behind our back: loop and scratch mount are still cleaned.
  await run('umount', [again.rootfs]);
  await roots2.unmount('c2');
  await s2.removeRoot('c2');
  await assertGone(env, 'c2', false);
  await s2.close();
});

test('failed descriptions and mounts roll back everything they made', async (t) => {
  const env = await fresh(t);
  const { s, roots, mountRoot } = env;
  await assert.rejects(s.describeRoot('c3', 'nosuchimage', { scratchBytes: 32 * MiB }), (e: any) => e.class === 'NotFound');
  await assert.rejects(s.describeRoot('c3', 'busybox', { scratchBytes: MiB }), (e: any) => e.class === 'NotFound');
  const img = await s.ensureBaseImage();
  await assert.rejects(s.describeRoot('c3', img.id, { scratchBytes: MiB }), (e: any) => e.class === 'InvalidArgument');
  await assert.rejects(s.describeRoot('../x', img.id, { scratchBytes: 32 * MiB }), (e: any) => e.class === 'InvalidArgument');
  await assert.rejects(roots.mount('../x', await s.describeRoot('c3', img.id, { scratchBytes: 32 * MiB })), (e: any) => e.class === 'InvalidArgument');
  await s.removeRoot('c3');
  await assertGone(env, 'c3', false);
  // Break the layer so the overlay mount itself fails after loop and ext4 mount were made.
  const layer = (await s.listLayers())[0];
  await rename(layer.path, layer.path + '.away');
  await assert.rejects(mountRoot('c3', img.id, { scratchBytes: 32 * MiB }));
  await assertGone(env, 'c3', true);
  await s.removeRoot('c3');
  await assertGone(env, 'c3', false);
  assert.deepEqual(await s.listRoots(), []);
  await rename(layer.path + '.away', layer.path);
});

test('commit round trip: added, deleted and opaque dirs survive into a new image', async (t) => {
  const env = await fresh(t);
  const { s, roots, mountRoot } = env;
  const base = await s.ensureBaseImage();
  const m = await mountRoot('c4', 'busybox', { scratchBytes: 64 * MiB });
  await writeFile(join(m.rootfs, 'hello'), 'world');
  await mkdir(join(m.rootfs, 'home/user/deep'), { recursive: true });
  await writeFile(join(m.rootfs, 'home/user/deep/f'), 'f');
  await rm(join(m.rootfs, 'etc/group'));
  await rm(join(m.rootfs, 'usr/sbin'), { recursive: true });
  await mkdir(join(m.rootfs, 'usr/sbin')); // recreated over a deleted lower dir: overlay marks it opaque
  await writeFile(join(m.rootfs, 'usr/sbin/only'), '1');

  // A mounted root's changes are read where its backend mounted it.
  const upperDir = await roots.upper('c4');
  assert.ok(upperDir);
  const img = await s.commit('c4', base.id, { name: 'test/committed:v1', config: { Cmd: ['echo', 'hi'] }, comment: 'c', author: 'me', upperDir });
  assert.deepEqual(img.names, ['docker.io/test/committed:v1']);
  assert.equal(img.layers.length, 2);
  assert.equal(img.layers[0], base.layers[0]);
  assert.deepEqual(img.config.Cmd, ['echo', 'hi']);
  assert.deepEqual(img.config.Env, base.config.Env);
  assert.equal(img.history.length, 2);

  const n = await mountRoot('c5', 'test/committed:v1', { scratchBytes: 32 * MiB });
  assert.equal(await readFile(join(n.rootfs, 'hello'), 'utf8'), 'world');
  assert.equal(await readFile(join(n.rootfs, 'home/user/deep/f'), 'utf8'), 'f');
  assert.ok(!existsSync(join(n.rootfs, 'etc/group')));
  assert.ok(existsSync(join(n.rootfs, 'etc/passwd')));
  assert.deepEqual(await readdir(join(n.rootfs, 'usr/sbin')), ['only']);
  assert.ok(existsSync(join(n.rootfs, 'bin/sh')));

  // Commit of a stopped container (root unmounted): the scratch is mounted read-only for the walk only.
  await roots.unmount('c4');
  assert.equal(await roots.upper('c4'), undefined);
  const img2 = await s.commit('c4', base.id, {});
  assert.equal(img2.layers[1], img.layers[1], 'same changes, same diff id');
  await assertGone(env, 'c4', true);

  // Layers of a force-removed image stay while a container root uses them.
  await s.removeImage('test/committed:v1', { force: true });
  await s.removeImage(img2.id, { force: true });
  assert.equal((await s.listLayers()).length, 2);
  await roots.unmount('c5');
  await s.removeRoot('c5');
  assert.equal((await s.listLayers()).length, 1);
  await s.removeRoot('c4');
});
