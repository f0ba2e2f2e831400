// `silo doctor` finds what carries Silo's names without an owner, and --fix removes only that.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { TestDaemon } from './harness.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

test('doctor: planted leaks are listed, fixed, and live containers are left alone', async () => {
  const run = await d.silo(['run', '-d', '--name', 'live', 'busybox', 'sleep', '300']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((await d.silo(['doctor'])).code, 0);

  const ghost = randomBytes(32).toString('hex');
  const cg = `/sys/fs/cgroup/pids/${d.tag}/${ghost}`;
  mkdirSync(cg, { recursive: true });
  const ns = `${d.tag}-${ghost.slice(0, 12)}`;
  execFileSync('ip', ['netns', 'add', ns]);
  mkdirSync(`${d.stateDir}/storage/scratch`, { recursive: true });
  const img = `${d.stateDir}/storage/scratch/${ghost}.img`;
  writeFileSync(img, Buffer.alloc(1024 * 1024));
  const loop = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();

  const found = await d.silo(['doctor', '--format', 'json']);
  assert.equal(found.code, 1);
  const kinds = (JSON.parse(found.stdout) as { Kind: string; Object: string }[]).map((f) => `${f.Kind} ${f.Object}`);
  assert.ok(kinds.some((k) => k.startsWith('cgroup') && k.includes(ghost)), kinds.join('\n'));
  assert.ok(kinds.some((k) => k === `netns ${ns}`), kinds.join('\n'));
  assert.ok(kinds.some((k) => k.startsWith(`loop ${loop}`)), kinds.join('\n'));
  assert.ok(!kinds.some((k) => k.includes(run.stdout.trim())), 'the live container is owned');

  assert.equal((await d.silo(['doctor', '--fix'])).code, 0);
  assert.equal((await d.silo(['doctor'])).code, 0);
  assert.doesNotMatch(execFileSync('losetup', ['-a'], { encoding: 'utf8' }), new RegExp(ghost));
  assert.equal((await d.silo(['exec', 'live', 'echo', 'alive'])).stdout, 'alive\n');
});
