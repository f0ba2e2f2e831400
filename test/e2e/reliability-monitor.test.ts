// A container whose monitor (conmon) dies: the daemon must never report it exited while its process runs. The
// runtime's truth wins: the process is ended through runc and the exit is recorded with its reason (exit 137, State
// Error, a `monitor-lost` event), whether the daemon saw the monitor die or found it dead after a restart; stop acts
// on the real process; a restart policy brings the container back under a new monitor.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TestDaemon, sleep } from './harness.js';
import { request } from './native-client.js';

const d = new TestDaemon();
before(() => d.start());
after(async () => assert.deepEqual(await d.teardown(), []));

interface Inspected { Id: string; State: string; Pid?: number; ExitCode?: number; Error?: string; RestartCount: number }
const inspect = async (name: string): Promise<Inspected> => {
  const r = await d.silo(['inspect', name]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0] as Inspected;
};

/** A process counts as alive while /proc has it and it is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const conmonPidFile = (id: string) => `${d.runDir}/runtime/b/${id}/conmon.pid`;
function killMonitor(id: string): number {
  const pid = Number(readFileSync(conmonPidFile(id), 'utf8').trim());
  assert.ok(pid > 1);
  process.kill(pid, 'SIGKILL');
  return pid;
}

/** Until the record leaves Running (or the time is up); the record then must agree with the process. */
async function settled(name: string, ms = 15_000): Promise<Inspected> {
  const end = Date.now() + ms;
  let r = await inspect(name);
  while (r.State === 'Running' && Date.now() < end) {
    await sleep(200);
    r = await inspect(name);
  }
  return r;
}

function assertHonest(r: Inspected, pid: number): void {
  if (r.State === 'Running') return assert.ok(alive(pid), 'reported running, but its process is gone');
  assert.equal(r.State, 'Stopped');
  assert.ok(!alive(pid), `reported stopped (exit ${r.ExitCode}) while its process ${pid} still runs`);
  assert.equal(r.ExitCode, 137);
  assert.match(r.Error ?? '', /monitor/);
}

test('a killed monitor: the container is ended and reported so, stop and start act on the real process', async () => {
  const run = await d.silo(['run', '-d', '--name', 'mon1', 'busybox', 'sleep', '1000']);
  assert.equal(run.code, 0, run.stderr);
  const r0 = await inspect('mon1');
  assert.ok(r0.Pid && alive(r0.Pid));
  const since = Math.floor(Date.now() / 1000) - 1;
  killMonitor(r0.Id);
  const r1 = await settled('mon1');
  assert.equal(r1.State, 'Stopped', 'the daemon never noticed the monitor died');
  assertHonest(r1, r0.Pid);
  // The record stays true: a stop is a no-op, a start runs it again under a new monitor, and stop stops that.
  assert.equal((await d.silo(['stop', '-t', '1', 'mon1'])).code, 0);
  const start = await d.silo(['start', 'mon1']);
  assert.equal(start.code, 0, start.stderr);
  const r2 = await inspect('mon1');
  assert.equal(r2.State, 'Running');
  assert.equal(r2.Error, undefined);
  assert.ok(r2.Pid && alive(r2.Pid));
  assert.equal((await d.silo(['stop', '-t', '1', 'mon1'])).code, 0);
  assert.ok(!alive(r2.Pid), 'stop left the process running');
  // The docker door's event stream tells why, before the die event.
  const ev = await request(`${d.runDir}/docker.sock`, 'GET', `/events?since=${since}&until=${Math.ceil(Date.now() / 1000)}`);
  assert.equal(ev.status, 200);
  assert.match(ev.body.toString(), /"Action":"monitor-lost"/);
  assert.equal((await d.silo(['rm', 'mon1'])).code, 0);
});

test('a killed monitor under a restart policy: the container comes back under a new monitor', async () => {
  const run = await d.silo(['run', '-d', '--name', 'mon2', '--restart', 'always', 'busybox', 'sleep', '1000']);
  assert.equal(run.code, 0, run.stderr);
  const r0 = await inspect('mon2');
  const oldMonitor = killMonitor(r0.Id);
  let r = await inspect('mon2');
  for (let i = 0; i < 100 && (r.RestartCount === 0 || r.State !== 'Running'); i++) {
    await sleep(200);
    r = await inspect('mon2');
  }
  assert.equal(r.State, 'Running');
  assert.equal(r.RestartCount, 1);
  assert.ok(!alive(r0.Pid!), 'the first process still runs beside its replacement');
  assert.ok(r.Pid && alive(r.Pid));
  const monitor = Number(readFileSync(conmonPidFile(r.Id), 'utf8').trim());
  assert.notEqual(monitor, oldMonitor);
  assert.ok(alive(monitor), 'no monitor for the restarted container');
  assert.equal((await d.silo(['rm', '-f', 'mon2'])).code, 0);
});

test('a monitor killed while the daemon is down: after the restart the record agrees with the process', async () => {
  const run = await d.silo(['run', '-d', '--name', 'mon3', 'busybox', 'sleep', '1000']);
  assert.equal(run.code, 0, run.stderr);
  const r0 = await inspect('mon3');
  await d.kill();
  killMonitor(r0.Id);
  await d.start();
  const r1 = await settled('mon3');
  assert.equal(r1.State, 'Stopped', 'the restarted daemon never noticed the monitor died');
  assertHonest(r1, r0.Pid!);
  // And another restart reads the same exit, with its reason.
  await d.kill();
  await d.start();
  const r2 = await inspect('mon3');
  assert.equal(r2.State, 'Stopped');
  assert.equal(r2.ExitCode, 137);
  assert.match(r2.Error ?? '', /monitor/);
  assert.equal((await d.silo(['rm', 'mon3'])).code, 0);
});
