// Log options as docker speaks them, and reading a rotated log: --tail from the end across files and chunk
// boundaries gives exactly what a whole read's last lines are; since filters; a sink's promise holds the reader.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerLogging, parseLogSize } from '../../src/common/logopts.js';
import { logFiles, readLogFile } from '../../src/compute/logs.js';
import type { LogEntry } from '../../src/compute/backend.js';

test('log options: sizes as docker reads them, unknown drivers and options refused by name', () => {
  assert.equal(parseLogSize('10m', 'max-size'), 10 * 1024 * 1024);
  assert.equal(parseLogSize('512k', 'max-size'), 512 * 1024);
  assert.equal(parseLogSize('1g', 'max-size'), 1024 ** 3);
  assert.equal(parseLogSize('2MiB', 'max-size'), 2 * 1024 * 1024);
  assert.equal(parseLogSize('-1', 'max-size'), -1);
  assert.throws(() => parseLogSize('1x', 'max-size'), /invalid max-size '1x'/);
  assert.throws(() => parseLogSize('100', 'max-size'), /at least 4k/);
  assert.deepEqual(dockerLogging(undefined, {}), {});
  assert.deepEqual(dockerLogging('local', { 'max-size': '1m', 'max-file': '3' }), { MaxSizeInBytes: 1024 * 1024, MaxFiles: 3 });
  assert.deepEqual(dockerLogging('none'), { Driver: 'none' });
  assert.deepEqual(dockerLogging('json-file', { compress: 'false' }), {});
  assert.throws(() => dockerLogging('syslog'), /logging driver syslog is not supported/);
  assert.throws(() => dockerLogging('json-file', { labels: 'a' }), /log option labels is not supported/);
  assert.throws(() => dockerLogging('json-file', { compress: 'true' }), /log option compress/);
  assert.throws(() => dockerLogging('json-file', { 'max-file': '0' }), /max-file '0'/);
  assert.throws(() => dockerLogging('none', { 'max-size': '1m' }), /takes no options/);
});

const t0 = Date.parse('2026-01-01T00:00:00Z');
const at = (i: number) => new Date(t0 + i * 1000).toISOString().replace('Z', '000000+00:00');

/** A log of n lines over three files (oldest .2), with a line split into partial records and an unfinished tail. */
function makeLog(dir: string, n: number): string {
  const path = join(dir, 'ctr.log');
  const recs: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = i % 2 ? 'stderr' : 'stdout';
    if (i % 97 === 5) recs.push(`${at(i)} ${s} P part-${i}-`, `${at(i)} ${s} F end`);
    else recs.push(`${at(i)} ${s} F line ${i} ${'x'.repeat(i % 300)}`);
  }
  const a = Math.floor(recs.length / 3);
  writeFileSync(`${path}.2`, recs.slice(0, a).join('\n') + '\n');
  writeFileSync(`${path}.1`, recs.slice(a, 2 * a).join('\n') + '\n');
  writeFileSync(path, recs.slice(2 * a).join('\n') + '\n' + `${at(n)} stdout F unfini`); // no newline yet
  return path;
}

async function read(path: string, o: { tail?: number; since?: string }): Promise<string[]> {
  const out: string[] = [];
  await readLogFile(path, async () => true, { follow: false, ...o }, (e: LogEntry) => void out.push(`${e.stream} ${e.time} ${e.data.toString()}`), new AbortController().signal);
  return out;
}

test('tail reads from the end across rotated files and chunk boundaries, as a whole read would', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'silo-logs-'));
  try {
    const path = makeLog(dir, 6000); // ≈1.3 MB: several 256 KiB chunks per file
    const all = await read(path, {});
    assert.equal(all.length, 6000);
    assert.match(all[5], /part-5-end\n$/);
    for (const n of [0, 1, 5, 100, 2100, 4500, 5999, 6000, 10000]) {
      assert.deepEqual(await read(path, { tail: n }), all.slice(Math.max(0, all.length - n)), `tail ${n}`);
    }
    const since = new Date(t0 + 4000 * 1000).toISOString();
    assert.deepEqual(await read(path, { since }), all.slice(4000));
    assert.deepEqual(await read(path, { since, tail: 10 }), all.slice(-10));
    assert.deepEqual(await read(path, { since, tail: 5000 }), all.slice(4000));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sink that returns a promise holds the reader until it settles', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'silo-logs-'));
  try {
    const path = makeLog(dir, 300);
    let inFlight = 0;
    let most = 0;
    let count = 0;
    await readLogFile(path, async () => true, { follow: false }, async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      count++;
    }, new AbortController().signal);
    assert.equal(count, 300);
    assert.equal(most, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a rotation between listing the files and opening them loses nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'silo-logs-'));
  try {
    const path = join(dir, 'ctr.log');
    const lines = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => `${at(a + k)} stdout F n${a + k}\n`).join('');
    writeFileSync(`${path}.1`, lines(0, 10));
    writeFileSync(path, lines(10, 20));
    let calls = 0;
    // The writer rotates right after the reader's first listing: every name then means the next older file.
    const list = async (p: string) => {
      const names = await logFiles(p);
      if (++calls === 1) {
        renameSync(`${path}.1`, `${path}.2`);
        renameSync(path, `${path}.1`);
        writeFileSync(path, lines(20, 22));
      }
      return names;
    };
    const out: string[] = [];
    await readLogFile(path, async () => true, { follow: false }, (e: LogEntry) => void out.push(e.data.toString().trim()), new AbortController().signal, list);
    assert.deepEqual(out, Array.from({ length: 22 }, (_, i) => `n${i}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
