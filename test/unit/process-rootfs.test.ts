// Hostile root filesystems: kernel mount points that are symlinks are refused, and a working directory is judged by
// where it leads inside the container, not by how it is spelled (src/compute/process/rootfs.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCwdInRoot, checkRootfs, resolveInRoot } from '../../src/compute/process/rootfs.js';
import { checkCwd } from '../../src/compute/resolve.js';

function rootfs(build: (r: string) => void): string {
  const r = mkdtempSync(join(tmpdir(), 'silo-rootfs-'));
  build(r);
  return r;
}
const refused = (e: { class?: string }) => e.class === 'InvalidArgument';

test('checkRootfs: /dev, /proc or /sys as a symlink or a file is refused; directories and absence are fine', async () => {
  for (const [name, make] of [
    ['dev', (r: string) => symlinkSync('/tmp', join(r, 'dev'))],
    ['proc', (r: string) => symlinkSync('../../etc', join(r, 'proc'))],
    ['sys', (r: string) => symlinkSync('/', join(r, 'sys'))],
    ['dev', (r: string) => writeFileSync(join(r, 'dev'), '')],
  ] as const) {
    const r = rootfs(make);
    await assert.rejects(checkRootfs(r), (e: Error & { class?: string }) => refused(e) && e.message.includes(`/${name}`));
    rmSync(r, { recursive: true });
  }
  const ok = rootfs((r) => ['dev', 'proc'].forEach((d) => mkdirSync(join(r, d))));
  await checkRootfs(ok);
  rmSync(ok, { recursive: true });
});

test('resolveInRoot: links are followed inside the root, .. stops at it, /dev has runc\'s links', async () => {
  const r = rootfs((r) => {
    mkdirSync(join(r, 'srv/app'), { recursive: true });
    symlinkSync('/srv/app', join(r, 'abs'));
    symlinkSync('../../../../srv', join(r, 'up'));
    symlinkSync('/proc/self/fd/7', join(r, 'wd'));
    symlinkSync('loop', join(r, 'loop'));
  });
  try {
    assert.equal(await resolveInRoot(r, '/abs/x'), '/srv/app/x');
    assert.equal(await resolveInRoot(r, '/up/app'), '/srv/app');
    assert.equal(await resolveInRoot(r, '/wd'), '/proc/self/fd/7');
    assert.equal(await resolveInRoot(r, '/dev/fd/3'), '/proc/self/fd/3');
    assert.equal(await resolveInRoot(r, '/missing/../srv'), '/srv');
    await assert.rejects(resolveInRoot(r, '/loop'), /too many levels/);
  } finally {
    rmSync(r, { recursive: true });
  }
});

test('checkCwdInRoot: every way into /proc/<pid>/… is refused (CVE-2024-21626); ordinary dirs pass', async () => {
  const r = rootfs((r) => {
    mkdirSync(join(r, 'srv'));
    symlinkSync('/proc/self/fd/7', join(r, 'wd'));
    symlinkSync('../proc/self/task/1/fd/8', join(r, 'rel'));
    symlinkSync('/dev/fd', join(r, 'devfd'));
  });
  try {
    for (const c of ['/proc/self/fd/5', '/proc/1/task/1/fd/6', '/proc/self/cwd', '/proc/thread-self/fd/3', '/wd', '/wd/sub', '/rel', '/dev/fd/7', '/dev/stdin', '/devfd/9']) {
      await assert.rejects(checkCwdInRoot(r, c), refused, c);
    }
    await checkCwdInRoot(r, '/srv');
    await checkCwdInRoot(r, '/not/yet/made');
    await checkCwdInRoot(r, '/proc');
  } finally {
    rmSync(r, { recursive: true });
  }
});

test('checkCwd: anything under /proc is refused, as spelled', () => {
  for (const c of ['/proc/1/task/1/fd/6', '/proc/self/root', '/proc/self/map_files/x', '/x/../proc/self/cwd']) assert.throws(() => checkCwd(c), refused, c);
  assert.equal(checkCwd('/proc'), '/proc');
  assert.throws(() => checkCwd('rel'), /the working directory 'rel' is invalid, it needs to be an absolute path/); // dockerd's words
});
