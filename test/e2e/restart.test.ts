// Containers outlive the daemon: SIGKILL it, start it again, and everything is as it was.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestDaemon, sleep } from './harness.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

test('SIGKILL of the daemon: running containers go on, ports keep forwarding, exits meanwhile are recorded', async () => {
  const w = await d.silo(['run', '-d', '--name', 'w', 'busybox', 'sh', '-c', 'echo one; sleep 1000']);
  assert.equal(w.code, 0, w.stderr);
  const e = await d.silo(['run', '-d', '--name', 'ends', 'busybox', 'sh', '-c', 'sleep 2; echo bye; exit 7']);
  assert.equal(e.code, 0, e.stderr);
  await sleep(300);

  const port = 20000 + Math.floor(Math.random() * 20000);
  const web = await d.silo(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo up > /www/index.html && httpd -f -p 80 -h /www']);
  assert.equal(web.code, 0, web.stderr);
  await sleep(300);

  await d.kill();
  // Published ports are kernel rules, not a proxy of the daemon's: they keep forwarding while it is down.
  assert.equal(execFileSync('busybox', ['wget', '-qO-', `http://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: 5000 }), 'up\n');
  await sleep(2500); // `ends` exits while no daemon runs
  const ms = await d.startTimed();
  assert.ok(ms < 10_000, `daemon up in ${ms} ms`);

  const iw = JSON.parse((await d.silo(['inspect', 'w'])).stdout)[0];
  assert.equal(iw.State, 'Running');
  assert.equal((await d.silo(['logs', 'w'])).stdout, 'one\n');
  assert.equal((await d.silo(['exec', 'w', 'echo', 'still here'])).stdout, 'still here\n');

  const ie = JSON.parse((await d.silo(['inspect', 'ends'])).stdout)[0];
  assert.equal(ie.State, 'Stopped');
  assert.equal(ie.ExitCode, 7);
  assert.equal((await d.silo(['logs', 'ends'])).stdout, 'bye\n');
  assert.equal((await d.silo(['wait', 'ends'])).stdout.trim(), '7');

  // The adopted container is still under the daemon's control.
  const t0 = Date.now();
  assert.equal((await d.silo(['stop', '-t', '1', 'w'])).code, 0);
  assert.ok(Date.now() - t0 < 3000);
  assert.equal((await d.silo(['rm', '-f', 'w', 'ends', 'web'])).code, 0);
});

test('restart policies: on-failure retries up to its count, always comes back, a user stop is final', async () => {
  const f = await d.silo(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo try; exit 1']);
  assert.equal(f.code, 0, f.stderr);
  let insp: { RestartCount: number; State: string } = { RestartCount: 0, State: '' };
  for (let i = 0; i < 60 && !(insp.RestartCount === 2 && insp.State === 'Stopped'); i++) {
    await sleep(100);
    insp = JSON.parse((await d.silo(['inspect', 'flaky'])).stdout)[0];
  }
  assert.equal(insp.RestartCount, 2);
  assert.equal(insp.State, 'Stopped');
  await sleep(600); // no third try
  assert.equal(JSON.parse((await d.silo(['inspect', 'flaky'])).stdout)[0].RestartCount, 2);
  assert.equal((await d.silo(['logs', 'flaky'])).stdout, 'try\ntry\ntry\n');

  // Its process ends by itself after a moment, even with exit code 0: `always` brings it back.
  await d.silo(['run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.5']);
  let back = false;
  for (let i = 0; i < 50 && !back; i++) {
    await sleep(100);
    const x = JSON.parse((await d.silo(['inspect', 'always'])).stdout)[0];
    back = x.State === 'Running' && x.RestartCount >= 1;
  }
  assert.ok(back, 'an always container comes back after its process dies');
  assert.equal((await d.silo(['stop', '-t', '1', 'always'])).code, 0);
  await sleep(400);
  assert.equal(JSON.parse((await d.silo(['inspect', 'always'])).stdout)[0].State, 'Stopped');

  const bad = await d.silo(['run', '-d', '--rm', '--restart', 'always', 'busybox', 'true']);
  assert.equal(bad.code, 125);

  assert.equal((await d.silo(['rm', 'flaky', 'always'])).code, 0);
});
