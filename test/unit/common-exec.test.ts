// Host tools by absolute path (no PATH search per spawn) and atomic writes with and without fsync.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, SYSTEM_PATH, toolPath, TOOL_ENV } from '../../src/common/exec.js';
import { writeFileAtomic } from '../../src/common/atomic.js';

test('toolPath: a tool on the system PATH by its absolute path, looked up once; paths and unknown names as given', () => {
  const sh = toolPath('sh');
  assert.ok(SYSTEM_PATH.split(':').some((d) => sh === `${d}/sh`), sh);
  accessSync(sh, constants.X_OK);
  assert.equal(toolPath('sh'), sh);
  assert.equal(toolPath('/bin/true'), '/bin/true');
  assert.equal(toolPath('no-such-tool-silo-test'), 'no-such-tool-silo-test');
});

test('run: tools get the minimal environment unless the caller gives one', async () => {
  assert.deepEqual(Object.keys(TOOL_ENV), ['PATH']);
  const r = await run('sh', ['-c', 'echo "$PATH|${HOME:-none}"']);
  assert.equal(r.stdout, `${SYSTEM_PATH}|none\n`);
  const own = await run('sh', ['-c', 'echo "$X"'], { env: { X: 'given' } });
  assert.equal(own.stdout, 'given\n');
  await assert.rejects(run('no-such-tool-silo-test', []), /no-such-tool-silo-test/);
});

test('writeFileAtomic: durable or not, the whole content and no temp file left', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'silo-test-atomic-'));
  try {
    await writeFileAtomic(join(dir, 'a'), 'one');
    await writeFileAtomic(join(dir, 'a'), 'two', 0o600, { durable: false });
    await writeFileAtomic(join(dir, 'b'), 'three', 0o644, { durable: false });
    assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'two');
    assert.equal(readFileSync(join(dir, 'b'), 'utf8'), 'three');
    assert.deepEqual(readdirSync(dir).sort(), ['a', 'b']);
    // A directory that is missing is made; a large file (written through the thread pool) the same way.
    const big = 'x'.repeat(200_000);
    await writeFileAtomic(join(dir, 'c', 'd', 'e'), 'four');
    await writeFileAtomic(join(dir, 'f', 'g'), big);
    await writeFileAtomic(join(dir, 'f', 'g'), big + 'y', 0o600, { durable: false });
    assert.equal(readFileSync(join(dir, 'c', 'd', 'e'), 'utf8'), 'four');
    assert.equal(readFileSync(join(dir, 'f', 'g'), 'utf8'), big + 'y');
    assert.equal(statSync(join(dir, 'b')).mode & 0o777, 0o644);
    assert.deepEqual([readdirSync(join(dir, 'c', 'd')), readdirSync(join(dir, 'f'))], [['e'], ['g']]);
    // A write that cannot be made leaves no temp file: its path's parent is a file.
    await assert.rejects(writeFileAtomic(join(dir, 'a', 'x'), 'five'), /ENOTDIR/);
    assert.deepEqual(readdirSync(dir).sort(), ['a', 'b', 'c', 'f']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
