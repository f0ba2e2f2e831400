// Orphan temp files of interrupted atomic writes (`.<name>.<8 hex>.tmp`) are swept at start by each owner of the
// directory they are in; a file of the same shape among a user's files (a volume's data) is left alone.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDaemon } from './harness.js';
import { request } from './native-client.js';

const d = new TestDaemon();
before(async () => {
  await d.start();
});
after(async () => {
  assert.deepEqual(await d.teardown(), []);
});

const subdirs = (dir: string) => (existsSync(dir) ? readdirSync(dir).map((n) => join(dir, n)).filter((p) => statSync(p).isDirectory()) : []);

test('orphan temp files are swept at start by each owner; user files are not touched', async () => {
  const run = await d.silo(['run', '-d', '--name', 'keep', 'busybox', 'sleep', '600']);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const vol = await request(`${d.runDir}/docker.sock`, 'POST', '/volumes/create', { json: { Name: 'v1' } });
  assert.equal(vol.status, 201, vol.body.toString());

  const s = d.stateDir;
  const r = d.runDir;
  const dirs = [
    join(s, 'systems'),
    join(s, 'intents'),
    join(s, 'network', 'network'),
    ...subdirs(join(s, 'network', 'network')),
    join(s, 'storage', 'images'),
    join(s, 'storage', 'scratch'),
    ...subdirs(join(s, 'storage', 'layers')),
    join(s, 'runtime', id),
    join(r, 'runtime', 'b', id),
    ...subdirs(join(r, 'network', 'network', 'etc')),
    join(s, 'docker'),
    join(s, 'docker', 'containers'),
    join(s, 'registry'),
  ].filter((p) => existsSync(p));
  assert.ok(dirs.length >= 14, dirs.join('\n'));

  await d.kill();
  const planted = dirs.map((dir, i) => join(dir, `.record${i}.json.${(0xa0000000 + i).toString(16)}.tmp`));
  for (const p of planted) writeFileSync(p, '{"torn":');
  // The same shape inside a volume's data is the user's file, not ours.
  const decoy = join(s, 'volumes', 'v1', '_data', '.mine.0123abcd.tmp');
  writeFileSync(decoy, 'user data');

  await d.start();
  assert.deepEqual(planted.filter((p) => existsSync(p)), []);
  assert.ok(existsSync(decoy));
  // The daemon read every real record still: the container runs, and its volume is known.
  assert.equal((await d.silo(['ps', '--format', '{{.Names}}'])).stdout.trim(), 'keep');
  assert.equal((await request(`${d.runDir}/docker.sock`, 'GET', '/volumes/v1')).status, 200);
});

test('exec directories nothing will clean up are swept at start; a running exec keeps its own', async () => {
  const run = await d.silo(['run', '-d', 'busybox', 'sleep', '600']);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const ex = await d.silo(['exec', '-d', id, 'sleep', '600']);
  assert.equal(ex.code, 0, ex.stderr);
  const x = join(d.runDir, 'runtime', 'x');
  const live = readdirSync(x).map((n) => join(x, n));
  assert.equal(live.length, 1, live.join('\n'));

  await d.kill();
  // A daemon killed between making an exec's directory and naming its owner; an exec of a container that is gone;
  // one whose process ended while the daemon was down.
  const stray = ['a', 'b', 'c'].map((c) => join(x, c.repeat(64)));
  for (const p of stray) mkdirSync(p);
  writeFileSync(join(stray[1]!, 'owner'), 'f'.repeat(64));
  writeFileSync(join(stray[2]!, 'owner'), id);

  await d.start();
  assert.deepEqual(stray.filter((p) => existsSync(p)), []);
  assert.ok(existsSync(live[0]!), 'the running exec keeps its directory');
  assert.equal((await d.silo(['rm', '-f', id])).code, 0);
  assert.deepEqual(readdirSync(x), []);
});
