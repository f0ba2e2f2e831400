// Loop devices found by backing file through /proc/partitions: a real device attached to a file of the test's own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { boundLoops, detachLoops, loopsFor } from '../../src/common/loop.js';

test('boundLoops: the loopN names /proc/partitions lists, not disks or partitions of a loop device', () => {
  const text = 'major minor  #blocks  name\n\n 254        0  268435456 vda\n   7        3      10240 loop3\n 259        1       512 loop3p1\n   7       12         4 loop12\n';
  assert.deepEqual(boundLoops(text), ['loop3', 'loop12']);
  assert.deepEqual(boundLoops(''), []);
});

test('loopsFor finds a device attached to a file and none once it is detached', async () => {
  const dir = mkdtempSync('/var/tmp/silo-test-loop-');
  const file = join(dir, 'scratch.img');
  try {
    writeFileSync(file, Buffer.alloc(1024 * 1024));
    assert.deepEqual(await loopsFor(file), []);
    const dev = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
    try {
      assert.deepEqual(await loopsFor(file), [dev]);
    } finally {
      await detachLoops(file);
    }
    assert.deepEqual(await loopsFor(file), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
