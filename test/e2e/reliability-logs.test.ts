// Logs have a bound: a container printing ~50 MB keeps its log within max-size × max-file on disk (the daemon's
// default here, set by flag), counted by inode over every name the log's files have, and so it stays while the daemon
// is SIGKILLed and conmon writes on alone; --log-opt max-size=-1 keeps it whole, and then `logs --tail 5` reads only
// the end of the file, a full `logs` streams, and a follower that does not read holds the reader back: the daemon's
// RSS does not grow with the log. A fast writer never pushes a file past its size (a quarter of max-size:
// src/compute/process/logrotate.ts). Unknown log options are refused (docker-run-options.test.ts, test/unit/logs-rotation.test.ts).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import { TestDaemon, sleep } from './harness.js';
import { rssOf } from './native-client.js';

const MiB = 1024 * 1024;
const d = new TestDaemon();
// The daemon's default for containers that name no limit: 8 MiB files, 2 kept.
before(() => d.start({ SILO_LOG_MAX_SIZE: '8m', SILO_LOG_MAX_FILE: '2' }));
after(async () => assert.deepEqual(await d.teardown(), []));

// 714286 lines of 71 bytes (≈50.7 MB), then five known last lines.
const PRINT = 'yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -n 714286; for i in 1 2 3 4 5; do echo tail-$i; done';

const idOf = async (name: string) => JSON.parse((await d.silo(['inspect', name])).stdout)[0].Id as string;
/** The log's files and their sizes (ctr.log, ctr.log.1, …; not the second names rotation holds them by). */
function logSizes(id: string): Record<string, number> {
  const dir = `${d.stateDir}/runtime/${id}`;
  const out: Record<string, number> = {};
  for (const f of readdirSync(dir)) if (/^ctr\.log(\.\d+)?$/.test(f)) out[f] = statSync(`${dir}/${f}`, { throwIfNoEntry: false })?.size ?? 0;
  return out;
}
/** What the log takes on disk: every file under any of its names (.cur, .next, .tmp too), each inode once. */
function logOnDisk(id: string): number {
  const dir = `${d.stateDir}/runtime/${id}`;
  const seen = new Map<number, number>();
  for (const f of readdirSync(dir)) {
    if (!f.startsWith('ctr.log')) continue;
    const st = statSync(`${dir}/${f}`, { throwIfNoEntry: false });
    if (st) seen.set(st.ino, st.size);
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}
/** ctr.log and ctr.log.1 … ctr.log.n with none missing between, n at most `most`. */
function assertNamed(names: string[], most: number): void {
  const n = names.length - 1;
  assert.ok(n >= 1 && n <= most, `${n} rotated files (at most ${most})`);
  assert.deepEqual([...names].sort(), ['ctr.log', ...Array.from({ length: n }, (_, i) => `ctr.log.${i + 1}`)].sort());
}
const total = (s: Record<string, number>) => Object.values(s).reduce((a, b) => a + b, 0);

async function waitStopped(name: string, ms = 240_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (JSON.parse((await d.silo(['inspect', name])).stdout)[0].State === 'Stopped') return;
    await sleep(250);
  }
  throw new Error(`${name} still runs after ${ms} ms`);
}

test('a container printing 50 MB keeps its log under the cap, rotated, with its last lines', async () => {
  const run = await d.silo(['run', '-d', '--name', 'loud', 'busybox', 'sh', '-c', PRINT]);
  assert.equal(run.code, 0, run.stderr);
  const id = await idOf('loud');
  let most = 0;
  for (let i = 0; i < 2000; i++) {
    most = Math.max(most, logOnDisk(id));
    if (JSON.parse((await d.silo(['inspect', 'loud'])).stdout)[0].State === 'Stopped') break;
    await sleep(50);
  }
  await waitStopped('loud');
  const sizes = logSizes(id);
  // max-size 8 MiB × max-file 2 (the log itself is ≈80 MiB: 50.7 MB of lines, each with its time and stream): conmon
  // writes files of 2 MiB, six kept, so that even the two it may finish while no daemon looks fit in 16 MiB.
  assertNamed(Object.keys(sizes), 5);
  for (const [f, n] of Object.entries(sizes)) assert.ok(n <= 2 * MiB, `${f} is ${n} bytes`);
  assert.ok(most <= 16 * MiB, `the log took ${most} bytes on disk while it ran`);
  console.log(`# rotated log: at most ${(most / MiB).toFixed(1)} MiB on disk while 50.7 MB were printed; now ${JSON.stringify(sizes)}`);
  const tail = await d.silo(['logs', '--tail', '5', 'loud']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, 'tail-1\ntail-2\ntail-3\ntail-4\ntail-5\n');
  // The history that is kept reads in order across the rotated file and the current one.
  const all = await d.silo(['logs', 'loud'], { timeoutMs: 120_000 });
  const lines = all.stdout.split('\n').filter(Boolean);
  // At least what docker keeps: (max-file − 1) × max-size of records of 116 bytes (time, stream, 70 characters).
  assert.ok(lines.length > (8 * MiB) / 116, `only ${lines.length} lines kept`);
  assert.deepEqual(lines.slice(-5), ['tail-1', 'tail-2', 'tail-3', 'tail-4', 'tail-5']);
  // Whole lines, but the first: the start of its line may have gone with the file rotated out before it.
  const LINE = '0123456789012345678901234567890123456789012345678901234567890123456789';
  assert.ok(LINE.endsWith(lines[0]), `first line ${lines[0]}`);
  const bad = lines.slice(1, -5).map((l, i) => [i + 1, l] as const).filter(([, l]) => l !== LINE);
  assert.deepEqual(bad, []);
  assert.equal((await d.silo(['rm', 'loud'])).code, 0);
});

test('a fast writer never pushes a file past max-size; what is kept reads in order and --tail is right', async () => {
  // seq as fast as it goes: ≈30 MiB of log through files of 1 MiB, two kept. conmon itself replaces a file before a
  // record would pass the size; the daemon only names the files afterwards, so how busy it is does not matter.
  const N = 600_000;
  const run = await d.silo(['run', '-d', '--name', 'fast', '--log-opt', 'max-size=1m', '--log-opt', 'max-file=2', 'busybox', 'sh', '-c', `seq 1 ${N}`]);
  assert.equal(run.code, 0, run.stderr);
  const id = await idOf('fast');
  let most = 0;
  let samples = 0;
  for (let i = 0; i < 20000; i++) {
    for (const n of Object.values(logSizes(id))) most = Math.max(most, n);
    samples++;
    if (i % 50 === 49 && JSON.parse((await d.silo(['inspect', 'fast'])).stdout)[0].State === 'Stopped') break;
    await sleep(5);
  }
  await waitStopped('fast');
  for (const n of Object.values(logSizes(id))) most = Math.max(most, n);
  console.log(`# max-size=1m: the largest file seen in ${samples} samples was ${most} bytes`);
  // conmon's records are at most 8 KiB and 46 bytes: none is larger than the files' size (256 KiB), so no slack.
  assert.ok(most <= MiB / 4, `a log file reached ${most} bytes (max-size 1 MiB, files of 256 KiB)`);
  assertNamed(Object.keys(logSizes(id)), 5);
  const tail = await d.silo(['logs', '--tail', '3', 'fast']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, `${N - 2}\n${N - 1}\n${N}\n`);
  // What is kept reads in order, whole, up to the last line. (Whether a file between two kept ones can be lost
  // depends on how soon the daemon looks after conmon replaced one: test/unit/process-logrotate.test.ts.)
  const all = (await d.silo(['logs', 'fast'], { timeoutMs: 60_000 })).stdout.split('\n').filter(Boolean).map(Number);
  assert.ok(all.length > MiB / 52, `only ${all.length} lines kept`);
  const disorder = all.slice(1).map((v, i) => [all[i], v]).filter(([a, b]) => !(Number.isInteger(b) && b > a));
  assert.deepEqual(disorder.slice(0, 3), []);
  const gaps = all.slice(1).filter((v, i) => v !== all[i] + 1).length;
  console.log(`# ${all.length} lines kept, ${gaps} gap(s) between files`);
  assert.equal(all.at(-1), N);
  assert.equal((await d.silo(['rm', 'fast'])).code, 0);
});

test('the bound holds while the daemon is down: conmon writes on alone, the log stays within max-size × max-file', async () => {
  // A writer that does not stop: seq in a loop, files of 256 KiB (max-size=1m, max-file=2: 2 MiB on disk at most).
  const run = await d.silo(['run', '-d', '--name', 'alone', '--log-opt', 'max-size=1m', '--log-opt', 'max-file=2', 'busybox', 'sh', '-c', 'while :; do seq 1 20000; done']);
  assert.equal(run.code, 0, run.stderr);
  const id = await idOf('alone');
  await sleep(500);
  await d.kill();
  let most = 0;
  // Without a daemon to name them, conmon finishes files one after another: a few seconds are many rotations.
  for (let i = 0; i < 60; i++) {
    most = Math.max(most, logOnDisk(id));
    await sleep(50);
  }
  console.log(`# with the daemon down: at most ${(most / MiB).toFixed(2)} MiB on disk (cap 2 MiB)`);
  assert.ok(most <= 2 * MiB, `the log took ${most} bytes on disk with no daemon (cap 2 MiB)`);
  await d.start({ SILO_LOG_MAX_SIZE: '8m', SILO_LOG_MAX_FILE: '2' });
  for (let i = 0; i < 40; i++) {
    most = Math.max(most, logOnDisk(id));
    await sleep(50);
  }
  assert.ok(most <= 2 * MiB, `the log took ${most} bytes on disk after the restart (cap 2 MiB)`);
  // Killed first: a reader racing a writer that replaces a 256 KiB file several times a second is another matter.
  assert.equal((await d.silo(['kill', 'alone'])).code, 0);
  await waitStopped('alone');
  const tail = await d.silo(['logs', '--tail', '2', 'alone']);
  assert.equal(tail.code, 0, tail.stderr);
  // Two records; the kill can cut the last line, whose start and end then print apart.
  const n = tail.stdout.split('\n').filter(Boolean).length;
  assert.ok(n >= 2 && n <= 3, JSON.stringify(tail.stdout));
  assert.equal((await d.silo(['rm', '-f', 'alone'])).code, 0);
});

test('an unbounded 50 MB log: --tail 5 reads its end, logs stream, a stalled follower holds the reader; RSS stays flat', async () => {
  const pid = d.pid!;
  const run = await d.silo(['run', '-d', '--name', 'whole', '--log-opt', 'max-size=-1', 'busybox', 'sh', '-c', `sleep 1; ${PRINT}`]);
  assert.equal(run.code, 0, run.stderr);
  const id = await idOf('whole');
  const rss0 = await rssOf(pid);
  // A follower that never reads: without back-pressure the daemon would queue the whole log for it.
  let got = 0;
  const req = http.get({ socketPath: d.socket, path: `/v1/systems/${id}/logs?follow=1` });
  const res = await new Promise<http.IncomingMessage>((r, j) => (req.on('response', r), req.on('error', j)));
  res.once('data', (b: Buffer) => (got += b.length));
  res.pause();
  let rssMost = rss0;
  for (let i = 0; i < 2400 && JSON.parse((await d.silo(['inspect', 'whole'])).stdout)[0].State !== 'Stopped'; i++) {
    rssMost = Math.max(rssMost, await rssOf(pid));
    await sleep(100);
  }
  await waitStopped('whole');
  const size = total(logSizes(id));
  assert.ok(size > 50 * MiB, `the log is ${size} bytes: it was rotated`);

  const t0 = Date.now();
  const tail = await d.silo(['logs', '--tail', '5', 'whole']);
  const tailMs = Date.now() - t0;
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, 'tail-1\ntail-2\ntail-3\ntail-4\ntail-5\n');
  rssMost = Math.max(rssMost, await rssOf(pid));
  const all = await d.silo(['logs', '--since', '0', 'whole'], { timeoutMs: 180_000 });
  assert.equal(all.code, 0, all.stderr);
  assert.ok(all.stdout.length > 50_000_000, `logs gave ${all.stdout.length} bytes`);
  rssMost = Math.max(rssMost, await rssOf(pid));
  req.destroy();
  const growth = rssMost - rss0;
  console.log(`# ${(size / MiB).toFixed(1)} MiB log: --tail 5 in ${tailMs} ms; daemon RSS ${(rss0 / MiB).toFixed(1)} MiB, at most +${(growth / MiB).toFixed(1)} MiB with a stalled follower, a tail and a full read`);
  assert.ok(growth < 40 * MiB, `the daemon grew by ${(growth / MiB).toFixed(1)} MiB`);
  assert.equal((await d.silo(['rm', 'whole'])).code, 0);
});
