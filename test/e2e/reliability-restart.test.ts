// Live restore in depth: after a SIGKILL of the daemon and a restart, an adopted container is fully under control
// again — exec with stdin, stats, attach through the native API, stop — and what it logged while no daemon ran is
// all in its log, with no gap.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { upgrade as upgradeStream } from './native-client.js';
import { TestDaemon, sleep } from './harness.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

const upgrade = (path: string) => upgradeStream(d.socket, path);

/** The numbers a counter container printed, in log order. */
async function counted(name: string): Promise<number[]> {
  const r = await d.silo(['logs', name]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

test('after SIGKILL and restart: no log gap, and exec with stdin, stats, attach and stop work on the adopted container', async () => {
  const counter = await d.silo(['run', '-d', '--name', 'counter', 'busybox', 'sh', '-c', 'i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done']);
  assert.equal(counter.code, 0, counter.stderr);
  await sleep(500);
  const beforeKill = (await counted('counter')).length;
  assert.ok(beforeKill > 0);

  await d.kill();
  await sleep(1500); // the counter goes on printing with no daemon to read its output
  await d.start();
  await sleep(300);

  // No gap: every number from 0 on, each once and in order, including the ~15 printed while the daemon was down.
  const nums = await counted('counter');
  assert.ok(nums.length >= beforeKill + 10, `only ${nums.length} lines after restart (${beforeKill} before the kill)`);
  nums.forEach((n, i) => assert.equal(n, i, `line ${i} is ${n}: ${nums.join(',')}`));

  const insp = JSON.parse((await d.silo(['inspect', 'counter'])).stdout)[0];
  assert.equal(insp.State, 'Running');

  // exec with stdin: the bytes go in and come back out.
  const ex = await d.silo(['exec', '-i', 'counter', 'cat'], { input: 'through stdin\n' });
  assert.equal(ex.code, 0, ex.stderr);
  assert.equal(ex.stdout, 'through stdin\n');

  // stats of the adopted container: its cgroup is found again.
  const st = await d.silo(['stats', '--no-stream', '--format', 'json', 'counter']);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /counter/);

  // attach through the native API: the output that follows comes down the hijacked stream.
  const sock = await upgrade(`/v1/systems/${insp.Id}/attach`);
  let out = '';
  sock.on('data', (b: Buffer) => (out += b.toString('latin1')));
  for (let i = 0; i < 50 && !/\d+\n\D*\d+\n/.test(out); i++) await sleep(100);
  sock.destroy();
  assert.match(out, /\d+\n\D*\d+\n/, `attach gave ${JSON.stringify(out)}`);

  // stop works, and in time (the adopted process is still under the daemon's control).
  const t0 = Date.now();
  const stop = await d.silo(['stop', '-t', '1', 'counter']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(Date.now() - t0 < 5000, `stop took ${Date.now() - t0} ms`);
  assert.equal(JSON.parse((await d.silo(['inspect', 'counter'])).stdout)[0].State, 'Stopped');

  // And after the stop the log is still whole.
  const all = await counted('counter');
  all.forEach((n, i) => assert.equal(n, i, `line ${i} is ${n} after stop`));
  assert.equal((await d.silo(['rm', 'counter'])).code, 0);
});

test('after SIGKILL and restart: attach with stdin reaches a container started with -i', async () => {
  const c = await d.silo(['run', '-d', '-i', '--name', 'echoer', 'busybox', 'sh', '-c', 'while read l; do echo got-$l; done']);
  assert.equal(c.code, 0, c.stderr);
  await sleep(300);
  await d.kill();
  await d.start();
  const id = JSON.parse((await d.silo(['inspect', 'echoer'])).stdout)[0].Id;
  const sock = await upgrade(`/v1/systems/${id}/attach?stdin=1`);
  let out = '';
  sock.on('data', (b: Buffer) => (out += b.toString('latin1')));
  sock.write('hello\n');
  for (let i = 0; i < 50 && !out.includes('got-hello'); i++) await sleep(100);
  sock.destroy();
  assert.match(out, /got-hello/);
  assert.equal((await d.silo(['rm', '-f', 'echoer'])).code, 0);
});
