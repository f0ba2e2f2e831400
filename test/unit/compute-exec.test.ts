// Exec records: a finished one answers with its exit code, and nothing of a removed system's processes is kept (the
// records used to stay five minutes after their container was gone, each holding the container's record too).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExecManager } from '../../src/compute/exec.js';
import type { Attachment, ExitStatus, IsolationBackend } from '../../src/compute/backend.js';
import type { ComputeSystemRecord } from '../../src/compute/types.js';
import { EventBus } from '../../src/common/events.js';

function manager() {
  const exits: Array<(s: ExitStatus) => void> = [];
  const attachment: Attachment = { onOutput: () => {}, onClose: () => {}, writeStdin: () => {}, closeStdin: () => {}, detach: () => {} };
  const backend = {
    exec: async () => ({ pid: 42, attachment, exit: new Promise<ExitStatus>((r) => exits.push(r)) }),
  } as unknown as IsolationBackend;
  const rec = (id: string) => ({ Id: id, Name: `n-${id}`, State: 'Running', Document: { Isolation: 'process' }, Init: { Env: [], Cwd: '/', User: '0:0', Args: ['sh'] } }) as unknown as ComputeSystemRecord;
  const events = new EventBus();
  return { m: new ExecManager(new Map([['process', backend]]), events, rec), events, exits };
}

test('a finished exec keeps its exit code while its system lives; removing the system forgets its execs', async () => {
  const { m, events, exits } = manager();
  const a = m.create('a', { CommandArgs: ['true'] });
  const b = m.create('b', { CommandArgs: ['true'] });
  const unstarted = m.create('a', { CommandArgs: ['true'] });
  await m.start(a.Id);
  exits[0]({ exitCode: 3, finishedAt: new Date().toISOString() });
  await new Promise((r) => setImmediate(r));
  assert.equal(m.get(a.Id).ExitCode, 3);

  events.publish('system', 'destroy', 'a');
  assert.throws(() => m.get(a.Id), /No such exec instance|not found/i);
  assert.throws(() => m.get(unstarted.Id), /No such exec instance|not found/i);
  assert.equal(m.get(b.Id).SystemId, 'b', "another system's execs stay");

  // A process that ends after its system was removed leaves nothing behind either.
  await m.start(b.Id);
  events.publish('system', 'destroy', 'b');
  exits[1]({ exitCode: 0, finishedAt: new Date().toISOString() });
  await new Promise((r) => setImmediate(r));
  assert.throws(() => m.get(b.Id));
  assert.equal((m as unknown as { expiry: Map<string, unknown> }).expiry.size, 0, 'no timer is left to hold a record');
});
