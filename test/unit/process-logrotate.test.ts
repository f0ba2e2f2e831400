// Naming the files conmon rotates by itself: conmon's replacement (open <path>.tmp with O_TRUNC, rename it over
// <path>) is played here by hand, as conmon 2.1 does it, and the daemon's side must keep every full file, in order,
// up to max-file, whether it looks after each replacement or only after two.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filePlan, settleLog, startLog, unsettled } from '../../src/compute/process/logrotate.js';

/** conmon's reopen_k8s_file: a new file at <path>.tmp (truncating one made in advance), renamed over <path>. */
function conmonReplace(path: string): void {
  writeFileSync(`${path}.tmp`, '');
  renameSync(`${path}.tmp`, path);
}

function withDir(fn: (dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'silo-logrotate-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const contents = (path: string, n: number) =>
  [...Array.from({ length: n - 1 }, (_, i) => `${path}.${n - 1 - i}`), path].map((f) => readFileSync(f, 'utf8'));

test('each full file conmon replaces becomes .1, the older ones shift, none beyond max-file', withDir(async (dir) => {
  const path = join(dir, 'ctr.log');
  await startLog(path, 3);
  for (let i = 1; i <= 5; i++) {
    appendFileSync(path, `file-${i}\n`);
    conmonReplace(path);
    await settleLog(path, 3);
  }
  appendFileSync(path, 'file-6\n');
  assert.deepEqual(contents(path, 3), ['file-4\n', 'file-5\n', 'file-6\n']);
  assert.deepEqual(readdirSync(dir).sort(), ['ctr.log', 'ctr.log.1', 'ctr.log.2', 'ctr.log.cur', 'ctr.log.next', 'ctr.log.tmp']);
  assert.deepEqual(await unsettled(path), []);
}));

test('two replacements before the daemon looks: the armed file is kept; in between, they read in order', withDir(async (dir) => {
  const path = join(dir, 'ctr.log');
  await startLog(path, 4);
  appendFileSync(path, 'a\n');
  conmonReplace(path); // takes the armed file
  appendFileSync(path, 'b\n');
  conmonReplace(path); // makes its own
  appendFileSync(path, 'c\n');
  // Before the daemon names them, a reader finds them by their held names.
  assert.deepEqual((await unsettled(path)).map((f) => readFileSync(f, 'utf8')), ['a\n', 'b\n']);
  await settleLog(path, 4);
  assert.deepEqual(contents(path, 3), ['a\n', 'b\n', 'c\n']);
  // The current file is held again, and the next is armed: the next replacement loses nothing either.
  conmonReplace(path);
  appendFileSync(path, 'd\n');
  await settleLog(path, 4);
  assert.deepEqual(contents(path, 4), ['a\n', 'b\n', 'c\n', 'd\n']);
}));

test('a former run\'s log is moved aside at start, so conmon (counting from zero) never passes the size', withDir(async (dir) => {
  const path = join(dir, 'ctr.log');
  writeFileSync(path, 'run-1\n');
  await startLog(path, 2);
  assert.equal(readFileSync(path, 'utf8'), '');
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'run-1\n');
  // An empty former log is simply reused; with max-file=1 nothing is moved (docker's max-file=1 appends).
  await startLog(path, 2);
  assert.equal(readFileSync(`${path}.1`, 'utf8'), 'run-1\n');
  const one = join(dir, 'one.log');
  writeFileSync(one, 'kept\n');
  await startLog(one, 1);
  assert.equal(readFileSync(one, 'utf8'), 'kept\n');
  assert.ok(!readdirSync(dir).some((f) => f.startsWith('one.log.')));
}));

test('settling is cheap and changes nothing when conmon did nothing', withDir(async (dir) => {
  const path = join(dir, 'ctr.log');
  await startLog(path, 2);
  appendFileSync(path, 'x\n');
  const before = readdirSync(dir).sort();
  await Promise.all([settleLog(path, 2), settleLog(path, 2), settleLog(path, 2)]);
  assert.deepEqual(readdirSync(dir).sort(), before);
  assert.equal(readFileSync(path, 'utf8'), 'x\n');
}));

/** Bytes on disk under every name of the log, each file once. */
function onDisk(dir: string): number {
  const seen = new Map<number, number>();
  for (const f of readdirSync(dir)) {
    const st = statSync(join(dir, f));
    seen.set(st.ino, st.size);
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

test('files of a quarter of max-size: the log fits max-size × max-file even when the daemon looks only now and then', withDir(async (dir) => {
  for (const [maxSize, maxFiles] of [[4096, 2], [4096, 3], [4000, 5]] as const) {
    const path = join(dir, `m${maxFiles}.log`);
    const { fileSize, keep } = filePlan(maxSize, maxFiles);
    assert.ok(fileSize <= maxSize / 4 && keep === 4 * maxFiles - 2);
    await startLog(path, keep);
    let most = 0;
    // conmon fills file after file; the daemon looks after every third replacement (it was down for two).
    for (let i = 1; i <= 40; i++) {
      appendFileSync(path, 'x'.repeat(fileSize));
      conmonReplace(path);
      most = Math.max(most, onDisk(dir));
      if (i % 3 === 0) await settleLog(path, keep);
      most = Math.max(most, onDisk(dir));
    }
    assert.ok(most <= maxSize * maxFiles, `${most} bytes on disk for ${maxSize} × ${maxFiles}`);
    // …and what is kept once it has looked is never less than docker's (max-file − 1) × max-size.
    await settleLog(path, keep);
    let kept = 0;
    for (let i = 1; i < keep; i++) kept += statSync(`${path}.${i}`).size;
    assert.ok(kept >= (maxFiles - 1) * maxSize - 3 * (maxSize % 4), `${kept} bytes kept`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  }
  assert.deepEqual(filePlan(1 << 20, 1), { fileSize: 1 << 20, keep: 1 });
}));
