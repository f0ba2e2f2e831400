// The daemon's log: one JSON line per event (pino) naming the service that logged it, at the level the operator
// chose (and the start-up pages it gave back); an unknown level, or a run directory too long for its sockets, is
// refused with one line before anything is made.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { SILO_BIN, TestDaemon, runProcess } from './harness.js';

const d = new TestDaemon();
after(async () => {
  assert.deepEqual(await d.teardown(), []);
});

const records = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`a log line that is not one JSON object: ${l}`);
      }
    });

test('one JSON line per event, levels honoured', async () => {
  await d.start();
  const run = await d.silo(['run', '-d', '--name', 'kept', 'busybox', 'sleep', '600']);
  assert.equal(run.code, 0, run.stderr);
  const first = records(d.logs);
  const serving = first.find((r) => r.msg === 'serving');
  assert.ok(serving, d.logs);
  assert.equal(serving.level, 'info');
  assert.equal(typeof serving.time, 'string');
  assert.equal(serving.pid, d.pid);
  // Once serving, and once its native door has loaded, the daemon gave back the node binary's start-up pages
  // (src/host/release.ts), and still serves (the run above, the restarts below).
  const released = first.filter((r) => r.msg === "released the node binary's start-up pages");
  assert.deepEqual(released.map((r) => r.after), ['start', 'native door'], d.logs);
  for (const r of released) assert.ok((r.rssBeforeMB as number) - (r.rssAfterMB as number) > 5, JSON.stringify(r));

  // Restarted over a running container: the compute service logs what it adopted, at info.
  await d.kill();
  await d.start();
  const recovered = records(d.logs).find((r) => r.msg === 'recovered the systems of an earlier daemon');
  assert.ok(recovered, d.logs);
  assert.equal(recovered.service, 'compute');
  assert.equal(recovered.adopted, 1);

  // At warn, the same restart logs no info line at all.
  await d.kill();
  const before = d.logs.length;
  await d.start({ SILO_LOG_LEVEL: 'warn' });
  const quiet = records(d.logs.slice(before));
  assert.deepEqual(quiet.filter((r) => r.level === 'info' || r.level === 'debug'), []);
  assert.equal((await d.silo(['ps', '--format', '{{.Names}}'])).stdout.trim(), 'kept');
});

test('an unknown level is refused with one line, and nothing is made', async () => {
  const state = `/var/lib/${d.tag}-loud`;
  const r = await runProcess(process.execPath, [SILO_BIN, 'daemon', '--log-level', 'loud', '--state-dir', state, '--run-dir', `/run/${d.tag}-loud`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /unknown log level "loud"/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.ok(!existsSync(state));
});

test('a run directory too long for its sockets is refused at start with one line, and nothing is made', async () => {
  const state = `/var/lib/${d.tag}-long`;
  const run = `/run/${d.tag}-${'x'.repeat(40)}`;
  const r = await runProcess(process.execPath, [SILO_BIN, 'daemon', '--state-dir', state, '--run-dir', run, '--cgroup-parent', d.tag]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /--run-dir .* is too long: at most 25 characters/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.ok(!existsSync(state));
  assert.ok(!existsSync(run));
});
